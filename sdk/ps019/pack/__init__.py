"""The ps019 policy pack, built from the control registry. ``policypacks/ps019/__main__.py`` calls :func:`serve`."""

from __future__ import annotations

import re
import signal
import sys
import time
from concurrent import futures
from pathlib import Path

from ps019.controls.base import Control
from ps019.model import Level, Severity

PACK_NAME = "ps019"


def build_policies(controls: tuple[Control, ...]) -> list:
    """One pulumi_policy Policy per control (what the engine lists, configures and displays), plus the settings
    entry. Their validate functions are never called: ps019's servicer runs the controls itself."""
    from pulumi_policy import (EnforcementLevel, PolicyComplianceFramework, PolicyConfigSchema,
                               ResourceValidationPolicy, Severity as PSeverity, StackValidationPolicy)

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
            config_schema=PolicyConfigSchema(properties=dict(c.config_schema)) if c.config_schema else None,
            severity=severity[c.severity],
            framework=PolicyComplianceFramework(name="PS-019", version="0.1", reference=c.clause),
            remediation_steps=c.remediation,
            tags=["ps019"],
        ))
    policies.append(StackValidationPolicy(
        name=SETTINGS_POLICY,
        description="Pack-wide ps019 settings (environments, trusted keys, evidence store); holds config only.",
        validate=unused,
        enforcement_level=EnforcementLevel.ADVISORY,
        config_schema=PolicyConfigSchema(properties={
            name: {"type": "object"} for name in ("environments", "gate", "breakGlass", "exceptions", "identity",
                                                     "evidence", "log")
        }),
    ))
    return policies


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
    servicer = Ps019Servicer(PACK_NAME, pack_version(pack_dir), controls, build_policies(controls),
                             description="PS-019 secure change management: gate, least privilege, evidence")
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
