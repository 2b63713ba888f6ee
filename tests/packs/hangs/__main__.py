import time

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def hang(args, report_violation):
    time.sleep(3600)


PolicyPack(name="hangs", enforcement_level=EnforcementLevel.ADVISORY,
           policies=[ResourceValidationPolicy(name="hang", description="Hangs forever.", validate=hang)])
