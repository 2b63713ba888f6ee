"""Offline program mode: typed outputs, auto-names, placeholder safety for IAM, stack references, project config,
``main:`` and the event-loop fault (resources passed as arguments)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ps019.engine import Secret, capture_program
from ps019.engine.placeholders import ACCOUNT, auto_name, is_safe_placeholder
from ps019.errors import InputError
from ps019.iam import analyze_policy
from ps019.model import is_unknown

CORPUS = Path(__file__).resolve().parent / "corpus"
REGION = {"aws:region": "us-west-2"}


def write_program(root: Path, name: str, code: str, yaml_extra: str = "", main_dir: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\n{yaml_extra}")
    target = root / main_dir if main_dir else root
    target.mkdir(parents=True, exist_ok=True)
    (target / "__main__.py").write_text(textwrap.dedent(code))
    return root


TRUST = """
import json
import pulumi
import pulumi_aws as aws

github = aws.iam.OpenIdConnectProvider("github", url="https://token.actions.githubusercontent.com",
                                       client_id_lists=["sts.amazonaws.com"])
deploy = aws.iam.Role("deploy", assume_role_policy=github.arn.apply(lambda arn: json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                   "Principal": {"Federated": arn},
                   "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}]})))
fn_role = aws.iam.Role("fn", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}]}))
user = aws.iam.User("ci")
pulumi.export("user_trust", user.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": arn}}]})))
"""


@pytest.fixture(scope="module")
def trust_update(tmp_path_factory):
    program = write_program(tmp_path_factory.mktemp("trust"), "trust", TRUST)
    return capture_program(program, "acme/trust/dev", False, REGION)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, Secret):
        yield from _strings(value.value)


def test_oidc_provider_arn_keeps_the_federated_principal_kind(trust_update):
    provider = trust_update.by_name("github")
    assert provider.outputs["arn"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    trust = json.loads(trust_update.by_name("deploy").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": provider.outputs["arn"]}
    # The verdict on the placeholder is the verdict on the real ARN of a real account.
    real = json.dumps(trust).replace(ACCOUNT, "210987654321")
    placeholder_result = analyze_policy(json.dumps(trust))
    assert placeholder_result.verdict == analyze_policy(real).verdict


def test_service_principal_and_role_arns_have_their_real_shape(trust_update):
    role = trust_update.by_name("fn")
    assert re.fullmatch(rf"arn:aws:iam::{ACCOUNT}:role/fn-[0-9a-f]{{7}}", role.outputs["arn"])
    assert role.inputs["name"] == role.outputs["name"] == role.id  # auto-named at Check, the id is the name
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"}
    user_trust = json.loads(trust_update.stack_outputs["user_trust"])
    assert user_trust["Statement"][0]["Principal"]["AWS"].startswith(f"arn:aws:iam::{ACCOUNT}:user/ci-")


def test_no_placeholder_is_a_wildcard_or_a_foreign_account(trust_update):
    for resource in trust_update:
        for text in _strings(dict(resource.outputs)):
            assert is_safe_placeholder(text), (resource.urn, text)
        optional_inputs_left_alone = {"permissionsBoundary", "path"} & set(resource.outputs)
        assert not optional_inputs_left_alone or resource.type != "aws:iam/role:Role", resource.outputs


def test_auto_names_are_deterministic_and_respect_limits():
    assert auto_name("web", seed="s") == auto_name("web", seed="s") != auto_name("web", seed="t")
    assert re.fullmatch(r"web-[0-9a-f]{7}", auto_name("web", seed="s"))
    assert len(auto_name("a-very-long-load-balancer-name-indeed", seed="x", max_length=32)) == 32
    assert auto_name("demo", seed="x", suffix=".fifo").endswith(".fifo")


def test_computed_outputs_are_shaped_as_declared(tmp_path):
    program = write_program(tmp_path / "p", "shapes", """
        import pulumi, pulumi_aws as aws
        cert = aws.acm.Certificate("cert", domain_name="www.example.com", validation_method="DNS")
        record = aws.route53.Record("validation",
            name=cert.domain_validation_options.apply(lambda o: o[0].resource_record_name),
            type=cert.domain_validation_options.apply(lambda o: o[0].resource_record_type),
            zone_id=aws.route53.get_zone(name="example.com.").id, records=[cert.arn], ttl=60)
        api = aws.appsync.GraphQLApi("api", authentication_type="API_KEY", name="api")
        queue = aws.sqs.Queue("orders", fifo_queue=True)
        lb = aws.lb.LoadBalancer("front", internal=False)
        pulumi.export("graphql", api.uris["GRAPHQL"])
        pulumi.export("dns", lb.dns_name.apply(lambda d: "http://" + d))
        pulumi.export("queue", queue.name)
    """)
    update = capture_program(program, "acme/shapes/dev", False, REGION)
    record = update.by_name("validation")
    assert isinstance(record.inputs["name"], str) and isinstance(record.inputs["type"], str)
    assert re.fullmatch(r"Z[0-9A-F]{20}", record.inputs["zoneId"])
    assert update.stack_outputs["graphql"].startswith("https://")
    assert update.stack_outputs["dns"].startswith("http://front-")
    assert update.stack_outputs["queue"].endswith(".fifo")
    assert any("aws:route53/getZone:getZone" in w for w in update.warnings)
    assert update.placeholders["placeholder_invokes"] == ["aws:route53/getZone:getZone"]
    preview = capture_program(program, "acme/shapes/dev", True, REGION)
    assert is_unknown(preview.by_name("validation").inputs["name"])  # computed at create: unknown in a preview
    assert re.fullmatch(r"front-[0-9a-f]{7}", preview.by_name("front").inputs["name"])  # auto-name: known at Check


def test_get_policy_document_in_a_program_is_the_provider_json():
    program = CORPUS / "programs" / "pulumi__pulumi-aws__examples-regress-4031"
    update = capture_program(program, "corpus/regress-4031/dev", False, REGION)
    role = update.by_name("test-role")
    assert json.loads(role.inputs["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    assert json.loads(role.inputs["inlinePolicies"][0]["policy"])["Statement"][0]["Resource"] == \
        "arn:aws:s3:::bucket1/*"
    assert not any("getPolicyDocument" in w for w in update.warnings)  # computed exactly, not a placeholder


STACK_REF_PROGRAM = CORPUS / "programs" / "pulumi__examples__aws-ts-vpc-with-ecs-fargate-py-ecs-fargate-python"
STACK_REF_CONFIG = {**REGION, "mystackpath": "acme/crosswalk-vpc/dev"}


def test_stack_references_supplied_unknown_in_preview_placeholder_in_update():
    from ps019.engine.stack_references import load_stack_reference

    outputs = load_stack_reference(CORPUS / "stack-references" / "crosswalk-vpc.json")
    update = capture_program(STACK_REF_PROGRAM, "corpus/fargate-with-awsx-vpc/dev", False, STACK_REF_CONFIG,
                             stack_references={"acme/crosswalk-vpc/dev": outputs})
    assert update.by_name("pulumi-fargate-sg").inputs["vpcId"] == "vpc-0a1b2c3d4e5f60718"
    assert update.by_name("pulumi-fargate-alb").inputs["subnets"] == outputs["pulumi_vpc_public_subnet_ids"]
    assert not any("stack reference" in w for w in update.warnings)

    preview = capture_program(STACK_REF_PROGRAM, "corpus/fargate-with-awsx-vpc/dev", True, STACK_REF_CONFIG)
    assert is_unknown(preview.by_name("pulumi-fargate-sg").inputs["vpcId"])
    assert any("'acme/crosswalk-vpc/dev' was not supplied" in w and "unknown" in w for w in preview.warnings)

    blind = capture_program(STACK_REF_PROGRAM, "corpus/fargate-with-awsx-vpc/dev", False, STACK_REF_CONFIG)
    assert blind.by_name("pulumi-fargate-sg").inputs["vpcId"].startswith("stack-reference-placeholder:")
    assert any("offline placeholders in this update" in w for w in blind.warnings)


def test_stack_reference_files(tmp_path):
    from ps019.engine.stack_references import load_stack_reference, parse_stack_reference_pairs

    export = {"version": 3, "deployment": {"resources": [
        {"type": "pulumi:pulumi:Stack", "urn": "urn:pulumi:dev::net::pulumi:pulumi:Stack::net-dev",
         "outputs": {"vpcId": "vpc-1", "token": {"4dabf18193072939515e22adb298388d":
                                                 "1b47061264138c4ac30d75fd1eb44270", "plaintext": "\"s3cr3t\""}}}]}}
    (tmp_path / "export.json").write_text(json.dumps(export))
    outputs = load_stack_reference(tmp_path / "export.json")
    assert outputs["vpcId"] == "vpc-1" and outputs["token"]["value"] == "s3cr3t"
    export["deployment"]["resources"][0]["outputs"]["token"] = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "AAA"}
    (tmp_path / "export.json").write_text(json.dumps(export))
    with pytest.raises(InputError, match="cannot be decrypted offline"):
        load_stack_reference(tmp_path / "export.json")
    with pytest.raises(InputError, match="expected NAME=FILE"):
        parse_stack_reference_pairs(["just-a-name"])


def test_project_config_defaults_types_required_and_main(tmp_path):
    program = write_program(tmp_path / "p", "cfg", """
        import pulumi, pulumi_aws as aws
        config = pulumi.Config()
        with open("data.txt") as handle:  # relative to main: src/, where the CLI runs the program
            text = handle.read().strip()
        aws.s3.Bucket("b", tags={"size": config.require("size"), "count": str(config.require_int("count")),
                                 "region": pulumi.Config("aws").require("region"), "data": text})
    """, yaml_extra=textwrap.dedent("""\
        main: src/
        config:
          aws:region: eu-central-1
          size:
            type: string
            default: small
          count:
            type: integer
        """), main_dir="src")
    (program / "src" / "data.txt").write_text("from-src\n")
    with pytest.raises(InputError, match="Stack 'dev' is missing configuration value 'count'"):
        capture_program(program, "acme/cfg/dev", True)
    with pytest.raises(InputError, match="must be of type 'integer'"):
        capture_program(program, "acme/cfg/dev", True, {"count": "many"})
    preview = capture_program(program, "acme/cfg/dev", True, {"count": "3"})
    assert preview.by_name("b").inputs["tags"] == {"size": "small", "count": "3", "region": "eu-central-1",
                                                   "data": "from-src"}
    assert preview.config["aws:region"] == "eu-central-1"
    stack_file_wins = capture_program(program, "acme/cfg/dev", True, {"count": "3", "size": "large"})
    assert stack_file_wins.by_name("b").inputs["tags"]["size"] == "large"


def test_broken_program_reports_its_own_error_and_line(tmp_path):
    program = write_program(tmp_path / "p", "broken", """
        import pulumi_aws as aws

        def helper():
            return aws.s3.Bucket("b", no_such_argument=1)

        helper()
    """)
    with pytest.raises(InputError, match=r"failed at __main__\.py:5: TypeError: .*no_such_argument"):
        capture_program(program, "acme/broken/dev", True)


STRESS = r"""
import json, os, sys
from ps019.engine.capture_worker import capture_once
from ps019.engine.sdk_schema import SdkSchema

program = sys.argv[1]
os.chdir(program)
sys.path.insert(0, program)
schema = SdkSchema()
schema.install()
request = {"program_root": program, "cwd": program, "program": os.path.join(program, "__main__.py"),
           "project": "aws-py-apigatewayv2-http-api-quickstart", "stack": "dev", "organization": "corpus",
           "dry_run": sys.argv[2] == "preview", "config": {"aws:region": "us-west-2"}, "secret_keys": []}
results = set()
for _ in range(int(sys.argv[3])):
    raw = capture_once(request, schema)
    results.add(json.dumps([raw["error"], sorted(json.dumps(r, sort_keys=True) for r in raw["resources"])]))
print(json.dumps(sorted(results)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["preview", "update"])
def test_resource_passed_as_an_argument_is_stable_over_50_runs(mode):
    """``role=lambda_role`` (a resource as an argument) once failed about one run in three with ``Task ... got
    Future ... attached to a different loop``. 50 captures in one process must give one identical result."""
    program = CORPUS / "programs" / "pulumi__examples__aws-py-apigatewayv2-http-api-quickcreate"
    proc = subprocess.run([sys.executable, "-c", STRESS, str(program), mode, "50"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 1, [json.loads(r)[0] for r in results]
    error, resources = json.loads(results[0])
    assert error is None and len(resources) == 6  # the stack and five resources


@pytest.mark.slow
def test_analyze_md_offline_examples_run_as_written(monkeypatch):
    """The commands of docs/analyze.md's offline program mode section run, and the supplied answers are used."""
    import shlex

    from click.testing import CliRunner

    from ps019.cli import cli as cli_main

    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    text = (root / "docs" / "analyze.md").read_text()
    section = text[text.index("## Offline program mode"):text.index("## Stack config and tags")]
    block = section[section.index("```bash\n") + 8:]
    block = block[:block.index("```")].replace("\\\n", " ")
    commands = [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("ps019 ")]
    assert len(commands) == 2
    for args in commands:
        result = CliRunner().invoke(cli_main, args + ["--format", "json"], catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output[-800:]
        report = json.loads(result.output[result.output.index("{"):])
        assert not any("getAmi" in w for w in report["warnings"])  # the supplied answer was used
        assert not any("stack reference" in w for w in report["warnings"])  # so were the supplied outputs
