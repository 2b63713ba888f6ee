"""A small program shaped like real ones: a component with a nested component, default and explicit providers,
secret config and an input computed from another resource's output."""

import json

import pulumi
import pulumi_aws as aws


class Site(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("shop:web:Site", name, {}, opts)
        self.bucket = aws.s3.Bucket(f"{name}-content", tags={"owner": "web"},
                                    opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.access = Access(f"{name}-access", self.bucket, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


class Access(pulumi.ComponentResource):
    def __init__(self, name, bucket, opts=None):
        super().__init__("shop:web:Access", name, {}, opts)
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"{arn}/*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


config = pulumi.Config()
site = Site("site")
db_password = config.require_secret("dbPassword")
eu = aws.Provider("eu", region="eu-west-1")
aws.ssm.Parameter("db-password", type="SecureString", value=db_password,
                  opts=pulumi.ResourceOptions(provider=eu, custom_timeouts=pulumi.CustomTimeouts(create="5m")))
pulumi.export("bucket", site.bucket.bucket)
