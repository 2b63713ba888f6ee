"""A known secret never reaches the evidence in any form a message can quote it: any case (IAM actions come back
lower-cased), JSON- or repr-escaped, URL-encoded, another Unicode normal form."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from ps019.engine import EngineResource, Secret, StackRef, run_pass
from ps019.evidence import EvidenceSettings, PolicyResult, emit, open_store
from ps019.evidence.store import redact_forbidden
from tests.plugins.evidence import make_record

SECRET = "Zq9HunterSecret77"


def test_a_secret_quoted_lowercased_inside_a_notaction_message_is_redacted_through_the_pack(ps019_pack, evidence_store):
    """Before: PS019-IAM-* quoted the NotAction entry 's3:Zq9HunterSecret77' as 's3:zq9huntersecret77', and the
    case-sensitive redaction let it into the record."""
    stack = StackRef.parse("acme/redaction/dev")
    root = stack.root_urn
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": [f"s3:{SECRET}"], "Resource": "*"}]})
    resources = [
        EngineResource(urn=root, type="pulumi:pulumi:Stack", custom=False),
        EngineResource(urn=f"urn:pulumi:dev::redaction::aws:rds/instance:Instance::db", type="aws:rds/instance:Instance",
                       id="db", parent=root, inputs={"engine": "postgres", "password": Secret(SECRET)},
                       outputs={"engine": "postgres"}),
        EngineResource(urn=f"urn:pulumi:dev::redaction::aws:iam/policy:Policy::p", type="aws:iam/policy:Policy",
                       id="p", parent=root, inputs={"policy": policy}, outputs={"policy": policy}),
    ]
    result = run_pass(ps019_pack, resources, stack=stack, dry_run=True)
    assert result.stack_analyzed
    [stored] = evidence_store.query(stack=str(stack), kind="preview")
    messages = " ".join(p["message"] for p in stored.document["policy_results"])
    assert "NotAction" in messages and "s3:[secret]" in messages  # the finding is kept, the secret is not
    raw = json.dumps({"record": stored.document, "envelope": stored.envelope}).lower()
    assert SECRET.lower() not in raw


@pytest.mark.parametrize("quoted", [
    SECRET.lower(), SECRET.upper(), f"'{SECRET}'", json.dumps(SECRET),
])
def test_case_and_quoting_do_not_hide_a_secret(quoted, tmp_path, evidence_signer):
    record = make_record(forbidden_values={SECRET}, policy_results=[
        PolicyResult(control_id="PS019-X-001", level="advisory", message=f"found {quoted} in the policy")])
    url = f"sqlite://{tmp_path}/e.db"
    assert emit(record, EvidenceSettings(store_url=url), signer=evidence_signer).ok
    raw = open_store(url).get(record.record_id).to_json().lower()
    assert SECRET.lower() not in raw and "[secret]" in raw


@pytest.mark.parametrize("secret", ['pa"ss\\wörd-9', "Päss-wörd-ß1", "ünï-\u212b-42", "a/b c+d&e=f"])
def test_every_quoted_form_of_a_secret_is_redacted(secret):
    import unicodedata

    forms = [secret, secret.lower(), secret.upper(), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
             secret.encode("unicode_escape").decode(), urllib.parse.quote(secret, safe=""),
             urllib.parse.quote_plus(secret), unicodedata.normalize("NFD", secret),
             unicodedata.normalize("NFKC", secret)]
    doc = {"messages": [f"<{form}>" for form in forms], f"key {secret.upper()}": 1}
    out = redact_forbidden(doc, {secret})
    assert out["messages"] == ["<[secret]>"] * len(forms)
    assert list(out)[1] == "key [secret]"


def test_short_secrets_only_as_whole_strings_in_any_case():
    out = redact_forbidden({"a": "PIN", "b": "spin", "c": ["pin"]}, {"pin"})
    assert out == {"a": "[secret]", "b": "spin", "c": ["[secret]"]}


def test_nothing_to_redact_returns_the_same_document():
    doc = {"a": "b", "n": [1, 2]}
    assert redact_forbidden(doc, {"unrelated-secret"}) is doc and redact_forbidden(doc, set()) is doc


def test_a_long_secret_is_redacted_in_every_form_without_a_huge_automaton():
    long_secret = "-----BEGIN PRIVATE KEY-----\n" + "Ab1/+" * 400 + "\n-----END PRIVATE KEY-----"
    doc = {"m": f"key {long_secret.lower()} leaked", "j": json.dumps({"k": long_secret}), "ok": "nothing here"}
    out = redact_forbidden(doc, {long_secret, "Zq9HunterSecret77"})
    assert out == {"m": "key [secret] leaked", "j": '{"k": "[secret]"}', "ok": "nothing here"}
