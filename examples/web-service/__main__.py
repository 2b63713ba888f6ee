"""A production web service, written the way PS-019 expects: encrypted private storage, a least-privileged app role,
network access limited to what the service needs, and the database password from secret config.

Run it through ps019 without a cloud account:  ps019 analyze --program examples/web-service --stack acme/web-service/prod
"""

import json

import pulumi
import pulumi_aws as aws

config = pulumi.Config()
aws_config = pulumi.Config("aws")
region = aws_config.require("region")  # the default AWS provider reads the same key
service = pulumi.get_project()
env = pulumi.get_stack()
db_password = config.require_secret("dbPassword")
vpc_id = config.require("vpcId")
db_subnet_ids = config.require_object("dbSubnetIds")

tags = {"service": service, "environment": env, "owner": "team-web", "cost-center": "cc-4711"}


class StaticAssets(pulumi.ComponentResource):
    """A private, encrypted, versioned bucket: one component so every service gets the same safe defaults."""

    def __init__(self, name: str, bucket_name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("acme:web:StaticAssets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(f"{name}-key", description=f"{bucket_name} objects", enable_key_rotation=True,
                               deletion_window_in_days=30, tags=tags, opts=child)
        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket=bucket_name, tags=tags, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                 "kms_master_key_id": self.key.arn},
                    "bucket_key_enabled": True}],
            opts=child)
        aws.s3.BucketPublicAccessBlock(f"{name}-public-access", bucket=self.bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketVersioning(f"{name}-versioning", bucket=self.bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        self.register_outputs({"bucket": self.bucket.bucket})


assets_bucket_name = f"acme-{service}-{env}-assets"
assets = StaticAssets("assets", assets_bucket_name)

# The task role trusts only ECS tasks of this account, and may only read/write its own bucket's objects.
app_role = aws.iam.Role(
    "app-task-role",
    name=f"{service}-{env}-task",
    assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    }),
    tags=tags,
)
aws.iam.RolePolicy(
    "app-task-policy",
    role=app_role.id,
    policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AssetObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"arn:aws:s3:::{assets_bucket_name}/*"},
            {"Sid": "AssetList", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": f"arn:aws:s3:::{assets_bucket_name}"},
            {"Sid": "DecryptViaS3Only", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
        ],
    }),
)

# HTTPS in from anywhere (the service is public), nothing else; the database only from the app.
web_sg = aws.ec2.SecurityGroup(
    "web-sg", vpc_id=vpc_id, description="HTTPS to the web service",
    ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"],
              "description": "HTTPS"}],
    egress=[{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": ["10.20.0.0/16"],
             "description": "PostgreSQL inside the VPC"}],
    tags=tags,
)
db_sg = aws.ec2.SecurityGroup(
    "db-sg", vpc_id=vpc_id, description="PostgreSQL from the web service only",
    ingress=[{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "security_groups": [web_sg.id],
              "description": "from web-sg"}],
    tags=tags,
)
db_subnets = aws.rds.SubnetGroup("db-subnets", subnet_ids=db_subnet_ids, tags=tags)
database = aws.rds.Instance(
    "app-db",
    engine="postgres",
    engine_version="16.4",
    instance_class="db.t4g.medium",
    allocated_storage=50,
    storage_encrypted=True,
    username="app",
    password=db_password,
    db_subnet_group_name=db_subnets.name,
    vpc_security_group_ids=[db_sg.id],
    publicly_accessible=False,
    multi_az=True,
    backup_retention_period=14,
    deletion_protection=True,
    skip_final_snapshot=False,
    final_snapshot_identifier=f"{service}-{env}-final",
    tags=tags,
)

pulumi.export("assetsBucket", assets.bucket.bucket)
pulumi.export("appRoleArn", app_role.arn)
pulumi.export("dbEndpoint", database.endpoint)
