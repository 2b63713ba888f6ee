"""Regenerate the committed stack exports from the example programs:  .venv/bin/python examples/make_exports.py

Each program is run as an update under Pulumi's mocks (``ps019.engine.capture_program``), and its resources are
written in ``pulumi stack export`` form (deployment v3): the root Stack, providers referenced as ``urn::id``,
parents, dependencies, property dependencies, provider-computed outputs, and secrets in the export's own encoding.

Which secrets are ``plaintext`` (as ``pulumi stack export --show-secrets`` writes them) and which ``ciphertext``:
values a policy must see are plaintext (the database password, the deploy provider's static keys: the tests prove
these never reach any output); everything else secret is ciphertext, which nobody can decrypt offline, as in a
normal export. Ciphertexts here are deterministic stand-ins (no real key encrypted them), and the IDs, ARNs and
timestamps a real provider would return are filled in below so the files look like what a real export holds.
The output is byte-stable: running this twice gives the same files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
sys.path.insert(0, str(ROOT / "sdk"))

from ps019.cli.demo import DEMO_SECRET_CONFIG  # noqa: E402 - after the path set-up
from ps019.engine import Secret, StackRef, capture_program  # noqa: E402
from ps019.engine.values import SECRET_SIG, SIG_KEY, UNKNOWN_SENTINELS  # noqa: E402

ACCOUNT = "123456789012"
CLI_VERSION = "v3.205.0"
AWS_PLUGIN_VERSION = "7.51.1"
TIME = "2026-11-02T09:14:03.512Z"

# (example dir, stack, the stack config file, secrets shown in plaintext as (resource name, property))
EXPORTS = [
    ("web-service", "acme/web-service/prod", "Pulumi.prod.yaml", {("app-db", "password")}),
    ("web-service", "acme/web-service/dev", "Pulumi.dev.yaml", {("app-db", "password")}),
    ("deploy-role", "acme/deploy-role/dev", "Pulumi.dev.yaml",
     {("deployer", "accessKey"), ("deployer", "secretKey")}),
]

# The stack outputs each program exports: name -> (resource name, output property).
STACK_OUTPUTS = {
    "web-service": {"assetsBucket": ("assets-bucket", "bucket"), "appRoleArn": ("app-task-role", "arn"),
                    "dbEndpoint": ("app-db", "endpoint")},
    "deploy-role": {"deployRoleArn": ("deploy-role", "arn"), "ciAccessKeyId": ("ci-deployer-key", "id"),
                    "ciSecretAccessKey": ("ci-deployer-key", "secret")},
}


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def _fake_ciphertext(*parts: str) -> str:
    # The shape of a passphrase-provider ciphertext: v1:<nonce b64>:<ciphertext b64>. Derived from names, never values.
    raw = _digest("ciphertext", *parts)
    return f"v1:{base64.b64encode(raw[:12]).decode()}:{base64.b64encode(raw[12:] * 2).decode()}"


def _provider_outputs(rtype: str, name: str, inputs: dict, region: str) -> tuple[str, dict]:
    """(id, extra outputs) a real AWS provider would return for this resource."""
    h = _digest(rtype, name).hex()
    if rtype == "aws:iam/role:Role":
        role = inputs.get("name", name)
        return role, {"arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "uniqueId": "AROA" + h[:17].upper(),
                      "path": "/", "maxSessionDuration": 3600}
    if rtype == "aws:iam/user:User":
        user = inputs.get("name", name)
        return user, {"arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "uniqueId": "AIDA" + h[:17].upper(), "path": "/"}
    if rtype == "aws:iam/accessKey:AccessKey":
        key_id = "AKIA" + h[:16].upper()
        return key_id, {"status": "Active", "createDate": TIME[:19] + "Z",
                        "secret": Secret("<ciphertext>"), "sesSmtpPasswordV4": Secret("<ciphertext>")}
    if rtype == "aws:iam/rolePolicy:RolePolicy":
        return f"{inputs.get('role')}:{name}-{h[:7]}", {"name": f"{name}-{h[:7]}"}
    if rtype == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        return f"{inputs.get('role')}-{h[:20]}", {}
    if rtype == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket", name)
        return bucket, {"arn": f"arn:aws:s3:::{bucket}", "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                        "region": region, "forceDestroy": False, "hostedZoneId": "Z3AQBSTGFYJSTF"}
    if rtype.startswith("aws:s3/bucket"):
        return str(inputs.get("bucket", name)), {}
    if rtype == "aws:kms/key:Key":
        key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        return key_id, {"arn": f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}", "keyId": key_id,
                        "keyUsage": "ENCRYPT_DECRYPT", "isEnabled": True}
    if rtype == "aws:ec2/securityGroup:SecurityGroup":
        sg = "sg-" + h[:17]
        return sg, {"arn": f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/{sg}", "ownerId": ACCOUNT,
                    "name": f"{name}-{h[:7]}"}
    if rtype == "aws:rds/subnetGroup:SubnetGroup":
        group = f"{name}-{h[:7]}"
        return group, {"name": group, "arn": f"arn:aws:rds:{region}:{ACCOUNT}:subgrp:{group}"}
    if rtype == "aws:rds/instance:Instance":
        ident = f"{name}-{h[:7]}"
        return ident, {"identifier": ident, "arn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{ident}",
                       "endpoint": f"{ident}.c{h[:12]}.{region}.rds.amazonaws.com:5432", "port": 5432,
                       "address": f"{ident}.c{h[:12]}.{region}.rds.amazonaws.com", "status": "available"}
    if rtype.startswith("pulumi:providers:"):
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}", {}
    return f"{name}-{h[:7]}", {}


def _stable_order(resources: list) -> list:
    """A state file lists resources in a dependency order (parents, providers and dependencies first). Registration
    order under asyncio varies from run to run, so pick one deterministic dependency order: among the resources
    whose prerequisites are all placed, the stack first, then providers, then by URN."""
    by_urn = {r.urn: r for r in resources}
    needs = {r.urn: {u for u in (r.parent, r.provider, *r.dependencies) if u in by_urn} for r in resources}
    placed: list = []
    done: set[str] = set()
    while len(placed) < len(resources):
        ready = [r for r in resources if r.urn not in done and needs[r.urn] <= done]
        if not ready:
            raise ValueError("dependency cycle among captured resources")
        first = min(ready, key=lambda r: (not r.is_stack, not r.is_provider, r.urn))
        placed.append(first)
        done.add(first.urn)
    return placed


def _replace(value: Any, real: dict[str, str]) -> Any:
    if isinstance(value, Secret):
        return Secret(_replace(value.value, real))
    if isinstance(value, dict):
        return {k: _replace(v, real) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, real) for v in value]
    if isinstance(value, str):
        return real.get(value, value)
    return value


def _encode(value: Any, where: tuple[str, str], plaintext: set, path: tuple = ()) -> Any:
    """Engine values -> state JSON (secrets as the export writes them)."""
    if isinstance(value, Secret):
        if where in plaintext and value.value != "<ciphertext>":
            return {SIG_KEY: SECRET_SIG, "plaintext": json.dumps(_encode(value.value, where, plaintext, path))}
        return {SIG_KEY: SECRET_SIG, "ciphertext": _fake_ciphertext(*where, *map(str, path))}
    if isinstance(value, dict):
        return {k: _encode(v, where, plaintext, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v, where, plaintext, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS.values():
        raise ValueError(f"unknown value at {where} in an update capture")
    if isinstance(value, float) and value.is_integer():
        return int(value)  # state JSON writes whole numbers without a fraction
    return value


def stack_config(example: str, config_file: str, project: str) -> dict[str, Any]:
    from ps019.cli.analyze import StackConfig, load_config_file

    config = StackConfig()
    load_config_file(str(EXAMPLES / example / config_file), project, config)
    values: dict[str, Any] = dict(config.values)
    for key, value in DEMO_SECRET_CONFIG.get(project, {}).items():
        values[key] = Secret(value)
    return values


def build_export(example: str, stack: str, config_file: str, plaintext: set) -> dict:
    ref = StackRef.parse(stack)
    config = stack_config(example, config_file, ref.project)
    region = str(config.get("aws:region", "us-east-1"))
    captured = capture_program(EXAMPLES / example, stack=ref, dry_run=False, config=config)
    ordered = _stable_order(captured.resources)
    ids: dict[str, str] = {}
    outputs_by_name: dict[str, dict] = {}
    resources = []
    # The mocks' IDs and ARNs ("<name>-id", "arn:aws:...:::<name>") -> what the real provider returned, so references
    # between resources (a bucket's ID in its encryption config, a security group in an instance) stay consistent.
    real: dict[str, str] = {}
    for r in ordered:
        name = r.name
        entry: dict[str, Any] = {"urn": r.urn, "custom": r.custom, "type": r.type}
        inputs = _replace(dict(r.inputs), real)
        outputs = _replace({k: v for k, v in r.outputs.items() if k != "id"}, real)
        if r.custom:
            rid, extra = _provider_outputs(r.type, name, inputs, region)
            ids[r.urn] = rid
            entry["id"] = rid
            real[r.id] = rid
            if isinstance(r.outputs.get("arn"), str) and "arn" in extra:
                real[r.outputs["arn"]] = extra["arn"]
            if "arn" not in extra and "arn" not in r.inputs:
                outputs.pop("arn", None)  # the mocks give every resource an ARN; these resource types have none
            outputs.update(extra)
            if r.type.startswith("pulumi:providers:"):
                outputs = dict(inputs)
            elif "tags" in inputs:
                outputs["tagsAll"] = inputs["tags"]
        outputs_by_name[name] = {**outputs, "id": ids.get(r.urn, "")}
        if r.is_stack:
            entry["outputs"] = {}
        else:
            entry["inputs"] = {k: _encode(v, (name, k), plaintext) for k, v in inputs.items()}
            entry["outputs"] = {k: _encode(v, (name, k), plaintext) for k, v in outputs.items()}
        if r.parent:
            entry["parent"] = r.parent
        if r.provider:
            entry["provider"] = f"{r.provider}::{ids[r.provider]}"
        if r.dependencies:
            entry["dependencies"] = list(r.dependencies)
        if r.property_dependencies:
            entry["propertyDependencies"] = {k: list(v) for k, v in r.property_dependencies.items()}
        if r.protect:
            entry["protect"] = True
        entry["created"] = TIME
        entry["modified"] = TIME
        resources.append(entry)
    stack_entry = resources[0]
    stack_entry["outputs"] = {
        key: _encode(outputs_by_name[res][prop], ("pulumi:pulumi:Stack", key), plaintext)
        for key, (res, prop) in STACK_OUTPUTS[example].items()}
    salt_parts = _digest("salt", stack)
    return {"version": 3, "deployment": {
        "manifest": {"time": TIME, "magic": hashlib.sha256(CLI_VERSION.encode()).hexdigest(), "version": CLI_VERSION,
                     "plugins": [{"name": "aws", "path": "", "type": "resource", "version": AWS_PLUGIN_VERSION}]},
        "secrets_providers": {"type": "passphrase", "state": {
            "salt": f"v1:{base64.b64encode(salt_parts[:8]).decode()}:v1:{base64.b64encode(salt_parts[8:20]).decode()}"
                    f":{base64.b64encode(salt_parts[20:]).decode()}"}},
        "resources": resources,
        "metadata": {},
    }}


def main() -> None:
    for example, stack, config_file, plaintext in EXPORTS:
        document = build_export(example, stack, config_file, plaintext)
        target = EXAMPLES / example / f"stack-export.{StackRef.parse(stack).stack}.json"
        target.write_text(json.dumps(document, indent=4) + "\n")
        print(f"wrote {target.relative_to(ROOT)} ({len(document['deployment']['resources'])} resources)")


if __name__ == "__main__":
    main()
