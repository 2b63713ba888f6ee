"""Gate controls: each reports what ``ps019.gate.decide_gate`` decided once for the run
(``ctx.gate.violations[CONTROL_ID]``) on the run's first analyzed resource (the root ``pulumi:pulumi:Stack`` under the
real engine), or, when no resource was analyzed, at AnalyzeStack (PS019-GATE-008).

IDs owned by the approval gate (``ps019.gate.decision``): PS019-GATE-001 … PS019-GATE-009.
PS019-GATE-020 (``plan_conformance``) is the exception to "once per run": it checks every analyzed resource against
the approved plan the change request binds (``ps019.gate.plan``).
Break-glass and exception controls (``ps019.gate.breakglass`` / ``exceptions``) use PS019-GATE-050 and above.
"""
