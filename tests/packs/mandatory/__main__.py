from pulumi_policy import (EnforcementLevel, PolicyPack, ResourceValidationPolicy, Severity,
                           StackValidationPolicy)


def no_forbidden(args, report_violation):
    if args.props.get("forbidden") is True:
        report_violation(f"{args.name} is forbidden")


def stack_forbidden(args, report_violation):
    for r in args.resources:
        if r.props.get("stackForbidden"):
            report_violation(f"{r.name} has stackForbidden", r.urn)
        if r.props.get("stackForbiddenNoUrn"):
            report_violation(f"{r.name} has stackForbiddenNoUrn")


def warn_everything(args, report_violation):
    if args.props.get("warn"):
        report_violation("just a warning")


PolicyPack(
    name="mandatory-test",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name="no-forbidden", description="No forbidden resources.", validate=no_forbidden,
                                 severity=Severity.HIGH),
        ResourceValidationPolicy(name="warn", description="Warns.", validate=warn_everything,
                                 enforcement_level=EnforcementLevel.ADVISORY),
        StackValidationPolicy(name="stack-forbidden", description="No stackForbidden outputs.",
                              validate=stack_forbidden),
    ],
)
