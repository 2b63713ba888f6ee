"""The production change gate: environment classification, change requests, verified approvals, approved path.

Public API (pure unless noted)::

    from ps019.gate import classify_environment, decide_gate, escalation_violations, GateInputs, GateSettings
    from ps019.gate.edges import gate_inputs          # the I/O edge the pack adapter calls once per run
    from ps019.gate.signing import sign, verify       # Ed25519 over RFC 8785 canonical JSON

See docs/gate.md.
"""

from ps019.gate.decision import (  # noqa: F401
    GATE_CONTROL_IDS,
    Deployer,
    GateDecision,
    GateInputs,
    decide_gate,
    escalation_violations,
)
from ps019.gate.settings import EnvironmentSettings, GateSettings, classify_environment  # noqa: F401
