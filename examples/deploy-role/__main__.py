"""A deploy-role stack with everything PS-019 §3 ("deployment jobs run under managed identities with least
privilege") forbids, each written the way it is found in real repositories:

- a role that trusts every AWS principal (`"Principal": {"AWS": "*"}` with no condition),
- AdministratorAccess attached to it, and an inline policy with `"Action": "*"` on `"Resource": "*"`,
- a long-lived IAM user with an access key for the CI system,
- an explicit AWS provider configured with static access keys instead of a managed identity.

DO NOT DEPLOY. Analyze it offline:  ps019 analyze --program examples/deploy-role --stack acme/deploy-role/dev
"""

import json

import pulumi
import pulumi_aws as aws

config = pulumi.Config()

# Static keys in stack config: whoever can read the stack's config can deploy as this identity.
deployer = aws.Provider(
    "deployer",
    region="us-east-1",
    access_key=config.require("deployAccessKeyId"),
    secret_key=config.require_secret("deploySecretAccessKey"),
)
with_deployer = pulumi.ResourceOptions(provider=deployer)

deploy_role = aws.iam.Role(
    "deploy-role",
    name="ci-deploy",
    assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }),
    opts=with_deployer,
)
aws.iam.RolePolicyAttachment(
    "deploy-admin",
    role=deploy_role.name,
    policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
    opts=with_deployer,
)
aws.iam.RolePolicy(
    "deploy-everything",
    role=deploy_role.id,
    policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }),
    opts=with_deployer,
)

ci_user = aws.iam.User("ci-deployer", name="ci-deployer", opts=with_deployer)
ci_key = aws.iam.AccessKey("ci-deployer-key", user=ci_user.name, opts=with_deployer)

pulumi.export("deployRoleArn", deploy_role.arn)
pulumi.export("ciAccessKeyId", ci_key.id)
pulumi.export("ciSecretAccessKey", ci_key.secret)
