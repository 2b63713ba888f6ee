"""The ps019 policy pack, built from the control registry. ``policypacks/ps019/__main__.py`` calls :func:`serve`."""

from __future__ import annotations

import re
import signal
import sys
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from ps019.controls.base import Control
from ps019.model import Level, Severity

PACK_NAME = "ps019"
FRAMEWORK_VERSION = "0.1"
PACK_TAGS = ["ps019", "change-management", "compliance", "aws", "iam", "evidence"]
PACK_DISPLAY_NAME = "PS-019 secure change management"
PACK_DESCRIPTION = "PS-019 secure change management: gate, least privilege, evidence"


def build_policies(controls: tuple[Control, ...]) -> list:
    """One pulumi_policy Policy per control (what the engine lists, configures and displays), plus the settings
    entry. Their validate functions are never called: ps019's servicer runs the controls itself. Config schemas are
    attached by :func:`attach_config_schemas` when the engine first asks for them (GetAnalyzerInfo), so that the
    pack's start-up does not pay for generating them from the pydantic models."""
    from pulumi_policy import (EnforcementLevel, PolicyComplianceFramework, ResourceValidationPolicy,
                               Severity as PSeverity, StackValidationPolicy)

    from ps019.pack.settings import SETTINGS_POLICY

    level = {Level.ADVISORY: EnforcementLevel.ADVISORY, Level.MANDATORY: EnforcementLevel.MANDATORY,
             Level.DISABLED: EnforcementLevel.DISABLED, Level.REMEDIATE: EnforcementLevel.MANDATORY}
    severity = {Severity.LOW: PSeverity.LOW, Severity.MEDIUM: PSeverity.MEDIUM, Severity.HIGH: PSeverity.HIGH,
                Severity.CRITICAL: PSeverity.CRITICAL}

    def unused(args, report_violation):  # pragma: no cover - never called, see docstring
        return None

    policies = []
    for c in controls:
        # A findings control reports on resources, so the engine lists it as a resource policy.
        kind = StackValidationPolicy if c.scope == "stack" else ResourceValidationPolicy
        policies.append(kind(
            name=c.id,
            description=c.title,
            validate=unused,
            enforcement_level=level[c.level],
            display_name=c.display_name or f"{c.id}: {c.title}",
            severity=severity[c.severity],
            framework=PolicyComplianceFramework(name="PS-019", version=FRAMEWORK_VERSION, reference=c.clause),
            remediation_steps=c.remediation,
            url=c.url,
            tags=["ps019", c.id.split("-")[1].lower()] + (["deployment"] if c.deployment_only else []),
        ))
    policies.append(StackValidationPolicy(
        name=SETTINGS_POLICY,
        description="Pack-wide ps019 settings (environments, trusted keys, evidence store); holds config only.",
        validate=unused,
        enforcement_level=EnforcementLevel.ADVISORY,
        display_name="ps019 settings",
        url="docs/configuration.md",
        tags=["ps019", "settings"],
    ))
    return policies


def attach_config_schemas(policies: list, controls: tuple[Control, ...]) -> None:
    """The JSON Schemas the engine validates the policy pack config against (``ps019.pack.schema``)."""
    from pulumi_policy import PolicyConfigSchema

    from ps019.pack.schema import control_config_schema, settings_section_schemas
    from ps019.pack.settings import SETTINGS_POLICY

    by_id = {c.id: c for c in controls}
    for policy in policies:
        if policy.config_schema is not None:
            continue
        if policy.name == SETTINGS_POLICY:
            policy.config_schema = PolicyConfigSchema(properties=settings_section_schemas())
        elif policy.name in by_id:
            properties, required = control_config_schema(by_id[policy.name])
            if properties:
                policy.config_schema = PolicyConfigSchema(properties=properties, required=required or None)


def analyzer_info() -> Any:
    """The bundled pack's GetAnalyzerInfo answer (policies, config schemas, metadata), built in this process by the
    same servicer the pack process runs: what ``ps019 pack schema`` prints and ``validate-config`` validates with."""
    from google.protobuf import empty_pb2

    from ps019.controls.registry import all_controls
    from ps019.pack.servicer import Ps019Servicer

    controls = all_controls()
    servicer = Ps019Servicer(PACK_NAME, "0.0.0", controls, build_policies(controls))
    return servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)


def pack_metadata(pack_dir: Path | None = None) -> dict:
    """What Pulumi Cloud shows for the pack: description, display name, readme (the pack's README.md), provider, tags
    and repository (PulumiPolicy.yaml ``website``, which the publishing organisation sets to its copy of ps019)."""
    readme = None
    website = None
    if pack_dir is not None:
        try:
            readme = (Path(pack_dir) / "README.md").read_text(encoding="utf-8")
        except OSError:
            readme = None
        try:
            text = (Path(pack_dir) / "PulumiPolicy.yaml").read_text(encoding="utf-8")
            match = re.search(r"""^website:[ \t]*["']?([^"'#\s]+)""", text, re.MULTILINE)
            website = match.group(1) if match else None
        except OSError:
            pass
    return {"description": PACK_DESCRIPTION, "display_name": PACK_DISPLAY_NAME,
            "readme": readme or (__doc__ or PACK_DESCRIPTION), "provider": "aws", "tags": list(PACK_TAGS),
            "repository": website}


def pack_version(pack_dir: Path) -> str:
    """The ``version`` of PulumiPolicy.yaml (a top-level scalar; read without a YAML parser to keep start-up light).
    The engine uses this version over whatever the pack reports; ps019 records it in evidence."""
    try:
        text = (pack_dir / "PulumiPolicy.yaml").read_text()
    except OSError:
        return "0.0.1"
    match = re.search(r"""^version:[ \t]*["']?([^"'#\s]+)""", text, re.MULTILINE)
    return match.group(1) if match else "0.0.1"


def serve(pack_dir: str | Path | None = None) -> None:
    """Serve the pack on 127.0.0.1 exactly as pulumi_policy.PolicyPack does: print the port, then wait."""
    # structlog imports rich (for pretty tracebacks) when it is installed: ~100-250 ms for output the pack never
    # renders (it logs JSON lines). Hide rich from this process only. Logging itself is configured at Configure.
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    from ps019.controls.registry import all_controls
    from ps019.pack.servicer import Ps019Servicer

    pack_dir = Path(pack_dir or Path.cwd())
    controls = all_controls()
    # `python -m pulumi.policy <engine address> <pack dir>`: the language host passes the engine's address first.
    engine_address = sys.argv[1] if len(sys.argv) > 2 else None
    servicer = Ps019Servicer(PACK_NAME, pack_version(pack_dir), controls, build_policies(controls),
                             engine_address=engine_address, **pack_metadata(pack_dir))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
    analyzer_pb2_grpc.add_AnalyzerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.buffer.write(f"{port}\n".encode())
    sys.stdout.flush()
    received = {"signal": "SIGINT"}

    def on_sigterm(signum, frame):  # noqa: ARG001 - as SIGINT: record the run as interrupted, then stop
        received["signal"] = "SIGTERM"
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        while True:
            time.sleep(86400)
    except KeyboardInterrupt:
        # The engine sends SIGINT at shutdown (after Cancel) and SIGKILL 5 s later: a run still open gets its
        # interrupted record now (spooled first, so the kill cannot lose it).
        servicer.interrupt(received["signal"])
        server.stop(0)
