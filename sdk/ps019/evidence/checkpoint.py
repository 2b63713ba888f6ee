"""Signed checkpoints of an evidence store: what makes truncation, head rewind and whole-store rollback detectable.

Modelled on AWS CloudTrail digest files and Certificate Transparency / Sigstore Rekor signed tree heads. A
checkpoint attests, at one moment, every chain's head -- its sequence and the hash of the record at that sequence --
with a SHA-256 digest over the sorted heads, in a DSSE envelope (in-toto Statement, predicate type
:data:`PREDICATE_TYPE`) signed by the evidence signing key. Because every record commits to its predecessor
(``prev_hash``), a record hash at sequence *n* commits to the whole chain up to *n*: the consistency proof between a
checkpoint and the store today is the store's own chain, verified from genesis through each attested (sequence,
hash). ``ps019 evidence verify --checkpoint FILE`` does exactly that (``ps019.evidence.chain.verify_chain``).

A checkpoint only helps if it is kept where the store's writer cannot rewrite it: an S3 Object Lock bucket, a second
store, the CI log, a file the auditor keeps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ps019.errors import InputError, IntegrityError
from ps019.evidence.canonical import canonical_bytes
from ps019.evidence.integrity import edited_fields, signed_statement
from ps019.evidence.record import format_utc
from ps019.evidence.signing import Signer, verify_envelope

PREDICATE_TYPE = "https://ps019.dev/evidence/checkpoint/v1"
VERSION = 1
LOG_PREFIX = "ps019-checkpoint: "  # how the stderr (CI log) sink prints one


@dataclass(frozen=True)
class Checkpoint:
    store: str
    created_at: str
    chains: dict[str, tuple[int, str]]  # chain key -> (sequence, record hash)
    heads_digest: str
    verified: bool  # whether the whole store verified when the checkpoint was taken
    keyid: str

    @property
    def records(self) -> int:
        return sum(seq for seq, _ in self.chains.values())


def heads_digest(chains: Mapping[str, tuple[int, str]]) -> str:
    """SHA-256 over the RFC 8785 form of ``[[chain, sequence, hash], ...]`` sorted by chain."""
    rows = [[chain, int(seq), digest] for chain, (seq, digest) in sorted(chains.items())]
    return hashlib.sha256(canonical_bytes({"heads": rows})).hexdigest()


def make_checkpoint(store_url: str, heads: Mapping[str, tuple[int, str]], signer: Signer, *, verified: bool,
                    now: datetime | None = None) -> dict[str, Any]:
    """The checkpoint document (``{"checkpoint": ..., "envelope": ...}``) for ``heads``, signed by ``signer``."""
    chains = {chain: [int(seq), digest] for chain, (seq, digest) in sorted(heads.items())}
    digest = heads_digest(heads)
    predicate = {"version": VERSION, "store": store_url,
                 "created_at": format_utc(now or datetime.now(timezone.utc)), "verified": bool(verified),
                 "chains": chains, "records": sum(seq for seq, _ in chains.values()), "heads_digest": digest}
    envelope = signer.sign_statement(f"ps019-checkpoint:{store_url}", digest, predicate, predicate_type=PREDICATE_TYPE)
    return {"checkpoint": predicate, "envelope": envelope}


def parse_checkpoint(obj: Any, keys: Mapping[str, Any], source: str = "checkpoint") -> Checkpoint:
    """A checkpoint document, its signature checked against ``keys``. InputError when it is not a checkpoint at all,
    IntegrityError when its signature, digest or content does not hold."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("checkpoint"), Mapping) \
            or not isinstance(obj.get("envelope"), Mapping):
        raise InputError(f"{source} is not a ps019 evidence checkpoint (expected {{\"checkpoint\", \"envelope\"}})")
    body, envelope = obj["checkpoint"], obj["envelope"]
    ok, reason, _ = verify_envelope(envelope, keys)
    if not ok:
        raise IntegrityError(f"{source}: field envelope: {reason}")
    stmt, why = signed_statement(envelope)
    if stmt is None or stmt.get("predicateType") != PREDICATE_TYPE:
        raise IntegrityError(f"{source}: field envelope: {why or 'not a ps019 checkpoint statement'}")
    fields = edited_fields(body, stmt.get("predicate"))
    if fields:
        raise IntegrityError(f"{source}: field {fields[0]}: differs from what was signed")
    try:
        chains = {str(k): (int(v[0]), str(v[1])) for k, v in body["chains"].items()}
        digest = body["heads_digest"]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise InputError(f"{source}: field chains: not a map of chain -> [sequence, hash]") from None
    if heads_digest(chains) != digest or (stmt.get("subject") or [{}])[0].get("digest", {}).get("sha256") != digest:
        raise IntegrityError(f"{source}: field heads_digest: does not match the attested heads")
    keyid = (envelope.get("signatures") or [{}])[0].get("keyid", "")
    return Checkpoint(store=str(body.get("store", "")), created_at=str(body.get("created_at", "")), chains=chains,
                      heads_digest=digest, verified=bool(body.get("verified")), keyid=keyid)


def load_checkpoint(path: str | Path, keys: Mapping[str, Any]) -> Checkpoint:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except (ValueError, RecursionError):
        raise InputError(f"checkpoint {path} is not JSON") from None
    return parse_checkpoint(obj, keys, f"checkpoint {path}")


def load_checkpoints(path: str | Path, keys: Mapping[str, Any]) -> list[Checkpoint]:
    """Every checkpoint in a file: one JSON document (``ps019 evidence checkpoint``), JSON lines (a file sink's
    chain file) or a log holding ``ps019-checkpoint: {...}`` lines (the stderr sink, in a CI log)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"checkpoint {path} is not text") from None
    try:
        return [parse_checkpoint(json.loads(text), keys, f"checkpoint {path}")]
    except (ValueError, RecursionError):
        pass
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if LOG_PREFIX.strip() in line:
            line = line.split(LOG_PREFIX.strip(), 1)[1]
        elif not line.lstrip().startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            raise InputError(f"checkpoint {path} line {number} is not JSON") from None
        out.append(parse_checkpoint(obj, keys, f"checkpoint {path} line {number}"))
    if not out:
        raise InputError(f"checkpoint {path} holds no checkpoint (JSON, JSON lines or ps019-checkpoint: lines)")
    return out
