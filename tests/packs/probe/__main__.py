"""Reports what a policy sees, as advisory diagnostics whose message is ``description\\n<JSON>``.

Never prints property values that may be secret: values are reported as SHA-256 of their JSON (``hashes``), except
the ``leakMe`` property, which the ``leak`` policy reports verbatim on purpose (to prove the stand-in scrubs it).
"""

import hashlib
import json

import pulumi
import pulumi.runtime
from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy,
                           StackValidationPolicy)


def _read(props, key):
    try:
        return props[key]
    except Exception as exc:  # UnknownValueError during preview
        return f"<{type(exc).__name__}>"


def _type_name(value):
    return type(value).__name__


def _plain(value):
    if isinstance(value, str):
        return value
    if hasattr(value, "items"):
        return {k: _plain(_read(value, k)) for k in value.keys()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "_ListProxy":
        return [_plain(v) for v in value]
    return value


def _hash(value):
    return hashlib.sha256(json.dumps(_plain(value), sort_keys=True).encode()).hexdigest()


def _config(args):
    cfg = args.get_config() or {}
    out = {}
    for full in cfg.get("configKeys", []):
        ns, _, key = full.partition(":")
        out[full] = pulumi.Config(ns).get(key)
    return out


def probe_resource(args, report_violation):
    props = {k: _read(args.props, k) for k in args.props.keys()}
    seen = {
        "type": args.resource_type, "urn": args.urn, "name": args.name,
        "stack": pulumi.get_stack(), "project": pulumi.get_project(), "organization": pulumi.get_organization(),
        "dry_run": pulumi.runtime.is_dry_run(), "config": _config(args),
        "config_hashes": {k: _hash(v) for k, v in _config(args).items()}, "tags": dict(args.stack_tags or {}),
        "types": {k: _type_name(v) for k, v in props.items()},
        "hashes": {k: _hash(v) for k, v in props.items() if not isinstance(v, str) or not v.startswith("<")},
        "numbers": {k: v for k, v in props.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "unknown": sorted(k for k, v in props.items() if v == "<UnknownValueError>"),
        "provider": None if args.provider is None else {
            "type": args.provider.resource_type, "urn": args.provider.urn, "name": args.provider.name,
            "props": {k: _read(args.provider.props, k) for k in args.provider.props.keys()}},
        "parent": args.opts.parent, "protect": args.opts.protect,
        "ignore_changes": list(args.opts.ignore_changes),
        "timeouts": [args.opts.custom_timeouts.create_seconds, args.opts.custom_timeouts.update_seconds,
                     args.opts.custom_timeouts.delete_seconds],
        "delete_before_replace": args.opts.delete_before_replace,
        "policy_config": {k: v for k, v in (args.get_config() or {}).items() if k != "configKeys"},
    }
    report_violation(json.dumps(seen, sort_keys=True))


def leak(args, report_violation):
    if "leakMe" in args.props:
        report_violation(f"the value is {args.props['leakMe']}")


def probe_stack(args, report_violation):
    seen = {
        "stack": pulumi.get_stack(), "dry_run": pulumi.runtime.is_dry_run(), "tags": dict(args.stack_tags or {}),
        "resources": [{
            "urn": r.urn, "type": r.resource_type,
            "parent": None if r.parent is None else r.parent.urn,
            "dependencies": [d.urn for d in r.dependencies],
            "property_dependencies": {k: [d.urn for d in v] for k, v in r.property_dependencies.items()},
            "provider": None if r.provider is None else r.provider.urn,
            "hashes": {k: _hash(_read(r.props, k)) for k in r.props.keys()},
        } for r in args.resources],
    }
    report_violation(json.dumps(seen, sort_keys=True))


def add_tag(args):
    if "fixMe" in args.props:
        props = dict(args.props)
        props["fixed"] = True
        return props
    return None


PolicyPack(
    name="probe",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[
        ResourceValidationPolicy(
            name="probe-resource", description="Reports what a resource policy sees.", validate=probe_resource,
            config_schema=PolicyConfigSchema(properties={
                "configKeys": {"type": "array", "items": {"type": "string"}},
                "threshold": {"type": "number", "default": 3},
                "label": {"type": "string"},
            })),
        ResourceValidationPolicy(name="leak", description="Reports the leakMe property verbatim.", validate=leak),
        ResourceValidationPolicy(name="remediate-fix", description="Adds fixed=true when fixMe is present.",
                                 remediate=add_tag),
        StackValidationPolicy(name="probe-stack", description="Reports what a stack policy sees.",
                              validate=probe_stack),
    ],
    initial_config={"probe-resource": {"label": "from-initial-config"}},
)
