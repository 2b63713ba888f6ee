"""Runs one Pulumi Python program under ``pulumi.runtime.set_mocks`` and records every registration (child process).

Invoked by :func:`ps019.engine.program.capture_program` as ``python -m ps019.engine.capture_worker REQUEST RESULT``,
so each capture starts with fresh pulumi global state. The result holds raw registrations in the engine's wire
encoding; the parent patches them into engine-faithful resources.

What the mocks answer (docs/engine.md "Program capture fidelity"):

* **Resources.** Preview: the inputs plus the provider's auto-name (known at Check time); other outputs stay unknown.
  Update: every output property the SDK declares and the program did not set as an input gets a deterministic,
  type-correct placeholder (:mod:`ps019.engine.placeholders`): realistic ids and ARNs for the fixed account, DNS
  names under ``example.invalid``, one-element lists and output objects shaped by their declared types.
* **Invokes.** :mod:`ps019.engine.invokes` (supplied answers, exact computations, AWS managed policies), else a
  placeholder shaped by the SDK's declared result type, reported by token.
* **Stack references.** Supplied outputs; otherwise unknown in a preview and a named placeholder in an update, with an
  advisory.
* **Remote components** (implemented by a provider plugin, e.g. awsx) cannot be expanded offline: their declared
  outputs get placeholders and the capture reports them, because their children are not analysed.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from ps019.engine import invokes as invoke_answers
from ps019.engine import placeholders
from ps019.engine.values import RESOURCE_REF_SIG, SIG_KEY

STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


def flatten_resource_refs(value: Any) -> Any:
    """Resource references replaced by the referenced resource's id (its URN when it has none), as the engine marshals
    them for an analyzer. Rehydrating a reference inside the mock monitor's thread creates futures on that thread's
    event loop, which the program's loop later awaits: ``RuntimeError: Task ... got Future ... attached to a different
    loop`` (pulumi/runtime/mocks.py deserializes on an executor thread)."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == RESOURCE_REF_SIG:
            ref_id = value.get("id")
            return ref_id if isinstance(ref_id, str) and ref_id else value.get("urn", "")
        return {k: flatten_resource_refs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [flatten_resource_refs(v) for v in value]
    return value


def _flattened_struct(struct: Any) -> Any:
    from google.protobuf import json_format, struct_pb2

    plain = json_format.MessageToDict(struct)
    flat = flatten_resource_refs(plain)
    if flat == plain:
        return None
    out = struct_pb2.Struct()
    out.update(flat)
    return out


def _with_flat_refs(req: Any, field: str) -> Any:
    """``req`` with the resource references in its Struct ``field`` flattened (a copy; ``req`` itself unchanged)."""
    flat = _flattened_struct(getattr(req, field))
    if flat is None:
        return req
    copy = type(req)()
    copy.CopyFrom(req)
    getattr(copy, field).CopyFrom(flat)
    return copy


def program_location(exc: BaseException, program_root: str) -> str:
    """``file.py:LINE`` of the innermost frame inside the program's directory, or ``""``."""
    root = os.path.realpath(program_root)
    found = ""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in traceback.extract_tb(current.__traceback__):
            path = os.path.realpath(frame.filename)
            if path.startswith(root + os.sep) and "site-packages" not in path:
                found = f"{os.path.relpath(path, root)}:{frame.lineno}"
        current = current.__cause__ or current.__context__
    return found


def main(request_path: str, result_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    os.chdir(request["cwd"])
    sys.path.insert(0, str(Path(request["program"]).parent))
    sys.argv = [request["program"]]
    from ps019.engine.sdk_schema import SdkSchema

    schema = SdkSchema()
    schema.install()
    Path(result_path).write_text(json.dumps(capture_once(request, schema), default=str))
    return 0


def capture_once(request: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Run the program of ``request`` once under fresh mocks and return the raw capture. Callable repeatedly in one
    process (the root stack is reset first); ``schema`` is an installed :class:`SdkSchema`."""
    os.environ["PULUMI_CONFIG"] = json.dumps(request["config"])
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(request["secret_keys"])
    from ps019.engine.sdk_schema import Filler, coerce_to_declared, resource_token

    import pulumi
    from pulumi.runtime import settings as pulumi_settings
    from google.protobuf import json_format
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    dry_run: bool = request["dry_run"]
    region = request["config"].get("aws:region", "us-east-1")
    supplied_invokes: dict[str, list] = request.get("invoke_results") or {}
    references: dict[str, dict[str, Any]] = request.get("stack_references") or {}
    captured: list[dict[str, Any]] = []
    stack_outputs: dict[str, Any] = {}
    notes: dict[str, list[str]] = {"placeholder_invokes": [], "remote_components": [], "missing_references": [],
                                   "placeholder_outputs": []}
    local = threading.local()

    def note(kind: str, text: str) -> None:
        if text not in notes[kind]:
            notes[kind].append(text)

    def autoname_field(rtype: str) -> str | None:
        field = placeholders.AUTONAMED.get(rtype, (None, 0))[0]
        if field is None:
            return None
        names = schema.input_names(rtype)
        return field if names is None or field in names else None

    def with_autoname(rtype: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """The inputs after the provider's Check: the auto-name filled in (pulumi-terraform-bridge AutoName) unless
        the program set the name or a ``namePrefix``, and structured values given for string properties turned into
        their JSON text (the bridge's JSON-document transform, e.g. an ``iam.PolicyDocumentArgs`` policy)."""
        declared = schema.output_types(rtype)
        if declared:
            inputs = {k: coerce_to_declared(v, declared.get(k)) if k in declared else v for k, v in inputs.items()}
        field = autoname_field(rtype)
        if field is None or inputs.get(field) not in (None, "") or inputs.get(f"{field}Prefix") is not None:
            return inputs
        seed = f"{rtype}::{name}"
        return {**inputs, field: placeholders.physical_name(rtype, name, inputs, seed)}

    monitor_holder: list[Any] = []

    def child_reference(component_type: str, component_name: str) -> Any:
        """A stand-in child for a remote component's resource-typed output: registered with the mock monitor (so the
        SDK can rehydrate the reference) but never with the engine, so it is not analysed, as offline it is not."""
        def make(cls: type, field: str) -> Any:
            token = resource_token(cls)
            if token is None or not monitor_holder:
                return None
            schema.resource_classes.setdefault(token, cls)
            child_name = f"{component_name}-{field}"
            child_inputs: dict[str, Any] = with_autoname(token, child_name, {})
            state = typed_outputs(token, child_name, child_inputs)
            child_id = placeholders.resource_id(token, child_name, child_inputs, f"{token}::{child_name}", region)
            urn = (f"urn:pulumi:{request['stack']}::{request['project']}::{component_type}${token}::{child_name}")
            monitor = monitor_holder[0]
            monitor.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, child_id, state)
            return {SIG_KEY: RESOURCE_REF_SIG, "urn": urn, "id": child_id, "packageVersion": ""}

        return make

    def typed_outputs(rtype: str, name: str, inputs: dict[str, Any], *, remote: bool = False) -> dict[str, Any]:
        declared = schema.output_types(rtype)
        input_names = schema.input_names(rtype) or set()
        seed = f"{rtype}::{name}"
        filler = Filler(schema, rtype=rtype, logical=name, inputs=inputs, seed=seed, region=region,
                        resource_ref=child_reference(rtype, name) if remote else None)
        outputs: dict[str, Any] = {}
        for field, typ in declared.items():
            if field in inputs:
                outputs[field] = coerce_to_declared(inputs[field], typ)
            elif field in input_names and field not in ("name", "arn", "id"):
                continue  # an optional input the program left out: the provider's default, not a placeholder
            else:
                value = filler.value(field, typ)
                if value is not None:
                    outputs[field] = value
        for field, value in inputs.items():
            outputs.setdefault(field, value)
        if rtype.startswith("aws:") and "arn" not in outputs and not declared:
            outputs["arn"] = placeholders.arn(rtype, name, inputs, seed, region)
        return outputs

    class Mocks(pulumi_mocks.Mocks):
        def new_resource(self, args: pulumi_mocks.MockResourceArgs):
            inputs = dict(args.inputs)
            if args.typ == STACK_REFERENCE_TYPE:
                return self._stack_reference(args, inputs)
            remote = getattr(local, "remote", False)
            if not args.custom and not remote:
                return "", inputs  # a local component: its children register themselves
            inputs = with_autoname(args.typ, args.name, inputs)
            if remote:
                note("remote_components", f"{args.typ} {args.name!r}")
            if dry_run or args.typ.startswith("pulumi:providers:"):
                return "", inputs  # preview: id and computed outputs unknown, inputs propagate
            outputs = typed_outputs(args.typ, args.name, inputs, remote=remote)
            note("placeholder_outputs", args.typ)
            if remote:
                return "", outputs
            seed = f"{args.typ}::{args.name}"
            return args.resource_id or placeholders.resource_id(args.typ, args.name, inputs, seed, region), outputs

        def _stack_reference(self, args: pulumi_mocks.MockResourceArgs, inputs: dict[str, Any]):
            name = str(inputs.get("name") or args.name)
            if name in references:
                return name, {"name": name, "outputs": references[name], "secretOutputNames": []}
            note("missing_references", name)
            if dry_run:
                return name, {"name": name}  # outputs unknown, as for any computed value in a preview
            return name, {"name": name, "outputs": {}, "secretOutputNames": []}

        def call(self, args: pulumi_mocks.MockCallArgs):
            token = args.token
            call_args = flatten_resource_refs(dict(args.args))
            supplied = invoke_answers.supplied_result(supplied_invokes, token, call_args)
            if supplied is not None:
                return supplied
            exact = invoke_answers.EXACT.get(token)
            if exact is not None:
                answer = exact(call_args, region)
                if answer is not None:
                    return answer
            return self._placeholder(token, call_args)

        def _placeholder(self, token: str, call_args: dict[str, Any]) -> dict[str, Any]:
            fields = schema.result_fields(token)
            note("placeholder_invokes", token)
            if fields is None:
                schema.unshaped.append(f"{token}: no declared result type")
                return {}
            logical = token.rsplit(":", 1)[-1]
            seed = f"{token}::{json.dumps(call_args, sort_keys=True, default=str)}"
            filler = Filler(schema, rtype=token, logical=logical, inputs=call_args, seed=seed, region=region)
            result: dict[str, Any] = {}
            for field, typ in fields.items():
                if field in call_args:
                    result[field] = call_args[field]
                else:
                    value = filler.value(field, typ)
                    if value is not None:
                        result[field] = value
            return result

    class CapturingMonitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, req):
            forwarded = _with_flat_refs(req, "object")
            local.remote = bool(req.remote)
            try:
                resp = super().RegisterResource(forwarded)
            finally:
                local.remote = False
            inputs = json_format.MessageToDict(req.object)
            if req.custom and req.type != "pulumi:pulumi:Stack":
                inputs = with_autoname(req.type, req.name, inputs)
            captured.append({
                "type": req.type, "name": req.name, "mock_urn": resp.urn, "id": resp.id, "custom": req.custom,
                "remote": bool(req.remote),
                "parent": req.parent, "provider": req.provider, "version": req.version,
                "dependencies": list(req.dependencies),
                "propertyDependencies": {k: list(v.urns) for k, v in req.propertyDependencies.items()},
                "protect": req.protect, "ignoreChanges": list(req.ignoreChanges),
                "deleteBeforeReplace": req.deleteBeforeReplace if req.deleteBeforeReplaceDefined else None,
                "additionalSecretOutputs": list(req.additionalSecretOutputs), "aliasURNs": list(req.aliasURNs),
                "customTimeouts": {"create": req.customTimeouts.create, "update": req.customTimeouts.update,
                                   "delete": req.customTimeouts.delete},
                "inputs": inputs,
                "outputs": json_format.MessageToDict(resp.object) if not dry_run else None,
            })
            return resp

        def ReadResource(self, req):
            return super().ReadResource(_with_flat_refs(req, "properties"))

        def Invoke(self, req):
            return super().Invoke(_with_flat_refs(req, "args"))

        def RegisterResourceOutputs(self, req):
            if req.urn.split("::")[2] == "pulumi:pulumi:Stack":
                stack_outputs.update(json_format.MessageToDict(req.outputs))
            return super().RegisterResourceOutputs(req)

    _patch_stack_reference(pulumi, references, dry_run, note)
    pulumi_settings.ROOT.set(None)
    mocks = Mocks()
    monitor_holder.append(CapturingMonitor(mocks))
    pulumi_mocks.set_mocks(mocks, project=request["project"], stack=request["stack"], preview=dry_run,
                           monitor=monitor_holder[0], organization=request["organization"] or "organization")
    error = None
    location = ""
    try:
        _sync_await(run_pulumi_func(lambda: _run_program(pulumi, request["program"])))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        error = _one_line(exc)
        location = program_location(exc, request["program_root"])
        if os.environ.get("PS019_CAPTURE_DEBUG"):
            traceback.print_exc()
    return {"resources": captured, "stack_outputs": stack_outputs, "error": error, "location": location,
            "notes": notes, "unshaped": sorted(set(schema.unshaped))}


def _run_program(pulumi: Any, program: str) -> None:
    """Run the program, then register the root stack's outputs (its exports). ``set_mocks`` finishes the root stack
    before the program runs, so without this the exports never reach the engine's Stack resource."""
    runpy.run_path(program, run_name="__main__")
    root = pulumi.runtime.get_root_resource()
    if root is not None and getattr(root, "outputs", None) and hasattr(root, "_outputs_registered"):
        root._outputs_registered = False
        root._finish()


def _patch_stack_reference(pulumi: Any, references: dict[str, Any], dry_run: bool, note: Any) -> None:
    """In an update, an output of a stack reference that was not supplied resolves to a named placeholder string
    (a program that reads it must not crash); the capture reports it as an advisory."""
    cls = pulumi.StackReference
    originals = cls.__dict__.get("_ps019_originals")
    if originals is None:
        originals = (cls.__init__, cls.get_output, cls.require_output)
        cls._ps019_originals = originals
    cls.__init__, cls.get_output, cls.require_output = originals
    if dry_run:
        return
    original_init, original_get, original_require = originals

    def placeholder(ref: Any, name: Any) -> Any:
        return pulumi.Output.from_input(name).apply(
            lambda n: f"stack-reference-placeholder:{getattr(ref, '_ps019_name', '?')}:{n}")

    def get_output(self, name):  # noqa: ANN001
        if getattr(self, "_ps019_name", None) in references:
            return original_get(self, name)
        return placeholder(self, name)

    def require_output(self, name):  # noqa: ANN001
        if getattr(self, "_ps019_name", None) in references:
            return original_require(self, name)
        return placeholder(self, name)

    def init(self, name, stack_name=None, opts=None):  # noqa: ANN001
        self._ps019_name = stack_name or name
        original_init(self, name, stack_name, opts)

    pulumi.StackReference.__init__ = init
    pulumi.StackReference.get_output = get_output
    pulumi.StackReference.require_output = require_output


def _one_line(exc: BaseException) -> str:
    while getattr(exc, "__cause__", None) is not None and not str(exc):
        exc = exc.__cause__  # type: ignore[assignment]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:400] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
