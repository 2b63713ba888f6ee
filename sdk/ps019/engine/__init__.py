"""A stand-in for the Pulumi engine's side of the Analyzer gRPC protocol.

It runs any Python or Node.js policy pack directory (several in one pass, like ``--policy-pack A --policy-pack B``)
exactly as ``pulumi preview``/``pulumi up --policy-pack DIR`` would, against
resources from a ``pulumi stack export`` file or from a Pulumi program run under mocks. See docs/engine.md.
"""

from ps019.engine.pack_process import PackProject, read_pack_project
from ps019.engine.policy_config import load_policy_pack_config
from ps019.engine.resources import CustomTimeouts, EngineResource, StackRef
from ps019.engine.runner import (
    EngineDiagnostic,
    PackPool,
    PassResult,
    PolicyInfo,
    PolicySummary,
    Remediation,
    UpResult,
    run_pass,
    run_passes,
    run_policy_analyze,
    run_up,
)
from ps019.engine.stack_export import StackExport, load_stack_export
from ps019.engine.values import Secret, marshal_properties, unknown
from ps019.model import UNKNOWN


def capture_program(*args, **kwargs):
    """Run a Pulumi Python program under mocks and return its resources (see :mod:`ps019.engine.program`)."""
    from ps019.engine.program import capture_program as _capture

    return _capture(*args, **kwargs)


def load_stack_config(*args, **kwargs):
    """``Pulumi.<stack>.yaml`` config of a program directory (see :mod:`ps019.engine.program`)."""
    from ps019.engine.program import load_stack_config as _load

    return _load(*args, **kwargs)


__all__ = [
    "load_stack_config",
    "UNKNOWN",
    "CustomTimeouts",
    "EngineDiagnostic",
    "EngineResource",
    "PackPool",
    "PackProject",
    "PassResult",
    "PolicyInfo",
    "PolicySummary",
    "Remediation",
    "Secret",
    "StackExport",
    "StackRef",
    "UpResult",
    "capture_program",
    "load_policy_pack_config",
    "load_stack_export",
    "marshal_properties",
    "read_pack_project",
    "run_pass",
    "run_passes",
    "run_policy_analyze",
    "run_up",
    "unknown",
]
