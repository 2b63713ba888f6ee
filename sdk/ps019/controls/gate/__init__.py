"""Gate controls: each runs on the root ``pulumi:pulumi:Stack`` resource (the first resource the engine analyzes) and
only reports what ``ps019.gate.decide_gate`` decided once for the run (``ctx.gate.violations[CONTROL_ID]``).

IDs owned by the approval gate (``ps019.gate.decision``): PS019-GATE-001 … PS019-GATE-009.
Break-glass and exception controls (``ps019.gate.breakglass`` / ``exceptions``) use PS019-GATE-010 and above.
"""
