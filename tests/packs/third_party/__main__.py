"""A typical third-party pack, shaped like Pulumi's aws-python policy template."""

from pulumi_policy import EnforcementLevel, PolicyPack, ReportViolation, ResourceValidationArgs, \
    ResourceValidationPolicy


def s3_no_public_read_validator(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type == "aws:s3/bucket:Bucket" and "acl" in args.props:
        acl = args.props["acl"]
        if acl in ("public-read", "public-read-write"):
            report_violation(f"You cannot set public-read or public-read-write on an S3 bucket. Read more at ...")


PolicyPack(
    name="aws-python",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[ResourceValidationPolicy(name="s3-no-public-read",
                                       description="Prohibits setting the publicRead or publicReadWrite "
                                                   "permission on AWS S3 buckets.",
                                       validate=s3_no_public_read_validator)],
)
