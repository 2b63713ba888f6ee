"""Runs one Pulumi Python program under ``pulumi.runtime.set_mocks`` and records every registration (child process).

Invoked by :func:`ps019.engine.program.capture_program` as ``python -m ps019.engine.capture_worker REQUEST RESULT``,
so each capture starts with fresh pulumi global state. The result holds raw registrations in the engine's wire
encoding; the parent patches them into engine-faithful resources.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

# Invokes a program commonly makes at the top, answered with plausible fixed values (mocks return {} otherwise).
_FIXED_INVOKES = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda a, r: {
        "accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/ps019", "userId": "AIDAPS019",
        "id": "123456789012"},
    "aws:index/getRegion:getRegion": lambda a, r: {"name": r, "region": r, "id": r,
                                                   "description": r, "endpoint": f"ec2.{r}.amazonaws.com"},
    "aws:index/getPartition:getPartition": lambda a, r: {"partition": "aws", "dnsSuffix": "amazonaws.com",
                                                         "id": "aws"},
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda a, r: {
        "names": [f"{r}a", f"{r}b", f"{r}c"], "zoneIds": ["use1-az1", "use1-az2", "use1-az3"], "id": r},
}


def fake_outputs(rtype: str, name: str) -> dict[str, Any]:
    """Computed outputs an update would return (the id aside): an ARN for AWS resources."""
    if rtype.startswith("aws:"):
        service = rtype.split(":")[1].split("/")[0]
        return {"arn": f"arn:aws:{service}:::{name}"}
    return {}


def main(request_path: str, result_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    os.environ["PULUMI_CONFIG"] = json.dumps(request["config"])
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(request["secret_keys"])
    os.chdir(request["program_dir"])
    sys.path.insert(0, request["program_dir"])
    sys.argv = [request["main"]]

    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    dry_run: bool = request["dry_run"]
    region = request["config"].get("aws:region", "us-east-1")
    captured: list[dict[str, Any]] = []
    stack_outputs: dict[str, Any] = {}

    class Mocks(pulumi_mocks.Mocks):
        def new_resource(self, args: pulumi_mocks.MockResourceArgs):
            if dry_run:
                return "", dict(args.inputs)  # preview: id and computed outputs unknown, inputs propagate
            if not args.custom:
                return "", dict(args.inputs)
            return f"{args.name}-id", {**fake_outputs(args.typ, args.name), **args.inputs}

        def call(self, args: pulumi_mocks.MockCallArgs):
            fixed = _FIXED_INVOKES.get(args.token)
            return fixed(args.args, region) if fixed else {}

    class CapturingMonitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, req):
            resp = super().RegisterResource(req)
            captured.append({
                "type": req.type, "name": req.name, "mock_urn": resp.urn, "id": resp.id, "custom": req.custom,
                "parent": req.parent, "provider": req.provider, "version": req.version,
                "dependencies": list(req.dependencies),
                "propertyDependencies": {k: list(v.urns) for k, v in req.propertyDependencies.items()},
                "protect": req.protect, "ignoreChanges": list(req.ignoreChanges),
                "deleteBeforeReplace": req.deleteBeforeReplace if req.deleteBeforeReplaceDefined else None,
                "additionalSecretOutputs": list(req.additionalSecretOutputs), "aliasURNs": list(req.aliasURNs),
                "customTimeouts": {"create": req.customTimeouts.create, "update": req.customTimeouts.update,
                                   "delete": req.customTimeouts.delete},
                "inputs": json_format.MessageToDict(req.object),
            })
            return resp

        def RegisterResourceOutputs(self, req):
            if req.urn.split("::")[2] == "pulumi:pulumi:Stack":
                stack_outputs.update(json_format.MessageToDict(req.outputs))
            return super().RegisterResourceOutputs(req)

    mocks = Mocks()
    pulumi_mocks.set_mocks(mocks, project=request["project"], stack=request["stack"], preview=dry_run,
                           monitor=CapturingMonitor(mocks), organization=request["organization"] or "organization")
    error = None
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(request["main"], run_name="__main__")))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        error = _one_line(exc)
        if os.environ.get("PS019_CAPTURE_DEBUG"):
            traceback.print_exc()
    Path(result_path).write_text(json.dumps({"resources": captured, "stack_outputs": stack_outputs,
                                             "error": error}))
    return 0


def _one_line(exc: BaseException) -> str:
    while getattr(exc, "__cause__", None) is not None and not str(exc):
        exc = exc.__cause__  # type: ignore[assignment]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:400] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
