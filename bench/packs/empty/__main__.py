"""Baseline for bench/pack_bench.py: the cheapest possible pulumi_policy pack (one no-op resource policy)."""

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def noop(args, report_violation):
    return None


PolicyPack(name="empty", policies=[ResourceValidationPolicy(name="noop", description="does nothing",
                                                           validate=noop,
                                                           enforcement_level=EnforcementLevel.ADVISORY)])
