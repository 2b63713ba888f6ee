"""Deterministic stand-ins for what a cloud provider computes: auto-names, ids, ARNs and typed placeholder values.

Pure functions over plain data (no SDK import). The program capture uses them for the outputs of an offline update
and for invokes it cannot answer exactly. Rules every value keeps, so that a placeholder can never change an IAM
verdict:

* one fixed account, :data:`ACCOUNT` (the account ``aws.get_caller_identity`` answers with), so a placeholder ARN is
  never a foreign account;
* no ``*`` or ``?`` anywhere, so a placeholder is never a wildcard;
* an ARN has the real shape of its resource type (``arn:aws:iam::<acct>:role/<name>``,
  ``arn:aws:iam::<acct>:oidc-provider/<host>``, ...), so a federated or service principal keeps its kind.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

ACCOUNT = "123456789012"
PARTITION = "aws"
# Addresses from the documentation ranges (RFC 5737), never a real host.
_IP_BASE = "203.0.113."


def digest(*parts: str, length: int = 7) -> str:
    """A stable lowercase hex string derived from ``parts`` (the same program always gets the same values)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def auto_name(logical_name: str, *, seed: str = "", max_length: int = 255, separator: str = "-",
              suffix: str = "") -> str:
    """The provider's auto-name: the logical name, a separator and 7 random hex characters (pulumi-terraform-bridge
    ``resource.NewUniqueHex``), here derived from ``seed`` so that it is deterministic. ``suffix`` is appended after
    the random part (an SQS FIFO queue's ``.fifo``)."""
    random_part = digest(seed or logical_name, logical_name)
    room = max_length - len(random_part) - len(separator) - len(suffix)
    return f"{logical_name[:max(room, 1)]}{separator}{random_part}{suffix}"


# Resources whose physical name comes from an input the provider auto-names, and its length limit
# (pulumi-aws provider/resources.go: tfbridge.AutoName / AutoNameWithCustomOptions).
AUTONAMED: dict[str, tuple[str, int]] = {
    "aws:s3/bucket:Bucket": ("bucket", 63),
    "aws:s3/bucketV2:BucketV2": ("bucket", 63),
    "aws:iam/role:Role": ("name", 64),
    "aws:iam/user:User": ("name", 64),
    "aws:iam/group:Group": ("name", 128),
    "aws:iam/policy:Policy": ("name", 128),
    "aws:iam/instanceProfile:InstanceProfile": ("name", 128),
    "aws:iam/rolePolicy:RolePolicy": ("name", 128),
    "aws:iam/userPolicy:UserPolicy": ("name", 128),
    "aws:iam/groupPolicy:GroupPolicy": ("name", 128),
    "aws:lambda/function:Function": ("name", 64),
    "aws:sqs/queue:Queue": ("name", 80),
    "aws:sns/topic:Topic": ("name", 256),
    "aws:dynamodb/table:Table": ("name", 255),
    "aws:ecs/cluster:Cluster": ("name", 255),
    "aws:ecs/service:Service": ("name", 255),
    "aws:ecr/repository:Repository": ("name", 256),
    "aws:lb/loadBalancer:LoadBalancer": ("name", 32),
    "aws:lb/targetGroup:TargetGroup": ("name", 32),
    "aws:alb/loadBalancer:LoadBalancer": ("name", 32),
    "aws:alb/targetGroup:TargetGroup": ("name", 32),
    "aws:ec2/securityGroup:SecurityGroup": ("name", 255),
    "aws:ec2/launchConfiguration:LaunchConfiguration": ("name", 255),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", 128),
    "aws:ec2/keyPair:KeyPair": ("keyName", 255),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:cloudwatch/eventRule:EventRule": ("name", 64),
    "aws:cloudwatch/eventBus:EventBus": ("name", 256),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", 255),
    "aws:kinesis/stream:Stream": ("name", 128),
    "aws:kms/alias:Alias": ("name", 256),
    "aws:secretsmanager/secret:Secret": ("name", 512),
    "aws:sfn/stateMachine:StateMachine": ("name", 80),
    "aws:apigateway/restApi:RestApi": ("name", 255),
    "aws:apigatewayv2/api:Api": ("name", 128),
    "aws:apigatewayv2/stage:Stage": ("name", 128),
    "aws:appsync/graphQLApi:GraphQLApi": ("name", 65536),
    "aws:rds/instance:Instance": ("identifier", 63),
    "aws:rds/subnetGroup:SubnetGroup": ("name", 255),
    "aws:redshift/subnetGroup:SubnetGroup": ("name", 255),
    "aws:autoscaling/group:Group": ("name", 255),
    "aws:ecs/capacityProvider:CapacityProvider": ("name", 255),
    "aws:glue/crawler:Crawler": ("name", 255),
    "aws:glue/job:Job": ("name", 255),
    "aws:glue/connection:Connection": ("name", 255),
    "aws:glue/trigger:Trigger": ("name", 255),
    "aws:batch/jobQueue:JobQueue": ("name", 128),
    "aws:batch/jobDefinition:JobDefinition": ("name", 128),
    "aws:batch/computeEnvironment:ComputeEnvironment": ("name", 128),
    "aws:cognito/userPool:UserPool": ("name", 128),
    "aws:codebuild/project:Project": ("name", 255),
}

# (service, resource part) of an ARN by resource type; ``{name}`` is the physical name, ``{id}`` the id.
_ARN_SHAPES: dict[str, tuple[str, str, bool]] = {
    # type: (service, resource, regional)
    "aws:iam/role:Role": ("iam", "role{path}{name}", False),
    "aws:iam/user:User": ("iam", "user{path}{name}", False),
    "aws:iam/group:Group": ("iam", "group{path}{name}", False),
    "aws:iam/policy:Policy": ("iam", "policy{path}{name}", False),
    "aws:iam/instanceProfile:InstanceProfile": ("iam", "instance-profile{path}{name}", False),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("iam", "oidc-provider/{oidc_host}", False),
    "aws:iam/samlProvider:SamlProvider": ("iam", "saml-provider/{name}", False),
    "aws:iam/serverCertificate:ServerCertificate": ("iam", "server-certificate{path}{name}", False),
    "aws:s3/bucket:Bucket": ("s3", "{name}", None),
    "aws:s3/bucketV2:BucketV2": ("s3", "{name}", None),
    "aws:lambda/function:Function": ("lambda", "function:{name}", True),
    "aws:lambda/layerVersion:LayerVersion": ("lambda", "layer:{name}:1", True),
    "aws:sqs/queue:Queue": ("sqs", "{name}", True),
    "aws:sns/topic:Topic": ("sns", "{name}", True),
    "aws:dynamodb/table:Table": ("dynamodb", "table/{name}", True),
    "aws:kms/key:Key": ("kms", "key/{uuid}", True),
    "aws:kms/alias:Alias": ("kms", "{name}", True),
    "aws:secretsmanager/secret:Secret": ("secretsmanager", "secret:{name}-{short}", True),
    "aws:ecs/cluster:Cluster": ("ecs", "cluster/{name}", True),
    "aws:ecs/service:Service": ("ecs", "service/{name}", True),
    "aws:ecs/taskDefinition:TaskDefinition": ("ecs", "task-definition/{family}:1", True),
    "aws:ecs/capacityProvider:CapacityProvider": ("ecs", "capacity-provider/{name}", True),
    "aws:ecr/repository:Repository": ("ecr", "repository/{name}", True),
    "aws:lb/loadBalancer:LoadBalancer": ("elasticloadbalancing", "loadbalancer/app/{name}/{hex16}", True),
    "aws:lb/targetGroup:TargetGroup": ("elasticloadbalancing", "targetgroup/{name}/{hex16}", True),
    "aws:lb/listener:Listener": ("elasticloadbalancing", "listener/app/{name}/{hex16}/{hex16b}", True),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "log-group:{name}", True),
    "aws:cloudwatch/eventRule:EventRule": ("events", "rule/{name}", True),
    "aws:cloudwatch/eventBus:EventBus": ("events", "event-bus/{name}", True),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "alarm:{name}", True),
    "aws:kinesis/stream:Stream": ("kinesis", "stream/{name}", True),
    "aws:sfn/stateMachine:StateMachine": ("states", "stateMachine:{name}", True),
    "aws:apigateway/restApi:RestApi": ("apigateway", "/restapis/{id}", "apigw"),
    "aws:apigatewayv2/api:Api": ("apigateway", "/apis/{id}", "apigw"),
    "aws:rds/instance:Instance": ("rds", "db:{name}", True),
    "aws:rds/subnetGroup:SubnetGroup": ("rds", "subgrp:{name}", True),
    "aws:redshift/cluster:Cluster": ("redshift", "cluster:{name}", True),
    "aws:ec2/instance:Instance": ("ec2", "instance/{id}", True),
    "aws:ec2/vpc:Vpc": ("ec2", "vpc/{id}", True),
    "aws:ec2/subnet:Subnet": ("ec2", "subnet/{id}", True),
    "aws:ec2/securityGroup:SecurityGroup": ("ec2", "security-group/{id}", True),
    "aws:acm/certificate:Certificate": ("acm", "certificate/{uuid}", True),
    "aws:cognito/userPool:UserPool": ("cognito-idp", "userpool/{id}", True),
    "aws:codebuild/project:Project": ("codebuild", "project/{name}", True),
    "aws:glue/job:Job": ("glue", "job/{name}", True),
    "aws:glue/crawler:Crawler": ("glue", "crawler/{name}", True),
    "aws:glue/catalogDatabase:CatalogDatabase": ("glue", "database/{name}", True),
    "aws:glue/connection:Connection": ("glue", "connection/{name}", True),
    "aws:glue/trigger:Trigger": ("glue", "trigger/{name}", True),
    "aws:batch/jobQueue:JobQueue": ("batch", "job-queue/{name}", True),
    "aws:batch/jobDefinition:JobDefinition": ("batch", "job-definition/{name}:1", True),
    "aws:batch/computeEnvironment:ComputeEnvironment": ("batch", "compute-environment/{name}", True),
    "aws:autoscaling/group:Group": ("autoscaling", "autoScalingGroup:{uuid}:autoScalingGroupName/{name}", True),
    "aws:appsync/graphQLApi:GraphQLApi": ("appsync", "apis/{id}", True),
    "aws:codebuild/sourceCredential:SourceCredential": ("codebuild", "token/github", True),
    "aws:cloudfront/distribution:Distribution": ("cloudfront", "distribution/{id}", False),
}

# Id shapes by resource type (EC2 ids are "<prefix>-<17 hex>").
_EC2_PREFIX = {
    "aws:ec2/instance:Instance": "i", "aws:ec2/vpc:Vpc": "vpc", "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg", "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/routeTable:RouteTable": "rtb", "aws:ec2/eip:Eip": "eipalloc", "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce", "aws:ec2/networkInterface:NetworkInterface": "eni",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt", "aws:ec2/keyPair:KeyPair": "key",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc", "aws:ec2/defaultVpc:DefaultVpc": "vpc",
    "aws:ec2/defaultSubnet:DefaultSubnet": "subnet", "aws:ec2/volume:Volume": "vol",
    "aws:ec2transitgateway/transitGateway:TransitGateway": "tgw",
}
# Physical-name-is-the-id types.
_NAME_IS_ID = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:iam/role:Role", "aws:iam/user:User",
               "aws:iam/group:Group", "aws:iam/instanceProfile:InstanceProfile", "aws:dynamodb/table:Table",
               "aws:lambda/function:Function", "aws:ecr/repository:Repository", "aws:cloudwatch/logGroup:LogGroup",
               "aws:kinesis/stream:Stream", "aws:cloudwatch/eventBus:EventBus", "aws:glue/job:Job",
               "aws:glue/crawler:Crawler", "aws:codebuild/project:Project", "aws:ecs/capacityProvider:CapacityProvider",
               "aws:autoscaling/group:Group", "aws:rds/subnetGroup:SubnetGroup", "aws:rds/instance:Instance",
               "aws:redshift/subnetGroup:SubnetGroup", "aws:redshift/cluster:Cluster"}
# The id is the ARN.
_ARN_IS_ID = {"aws:iam/policy:Policy", "aws:sns/topic:Topic", "aws:secretsmanager/secret:Secret",
              "aws:ecs/cluster:Cluster", "aws:ecs/service:Service", "aws:lb/loadBalancer:LoadBalancer",
              "aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener", "aws:sfn/stateMachine:StateMachine",
              "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:iam/samlProvider:SamlProvider",
              "aws:batch/jobDefinition:JobDefinition", "aws:batch/jobQueue:JobQueue",
              "aws:batch/computeEnvironment:ComputeEnvironment"}


def _uuid(seed: str) -> str:
    h = digest(seed, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def physical_name(rtype: str, logical: str, inputs: Mapping[str, Any], seed: str) -> str:
    """The resource's physical name: the input the provider auto-names when given, else the auto-name."""
    field, limit = AUTONAMED.get(rtype, ("name", 255))
    given = inputs.get(field)
    if isinstance(given, str) and given:
        return given
    suffix = ".fifo" if rtype == "aws:sqs/queue:Queue" and inputs.get("fifoQueue") is True else ""
    name = auto_name(logical, seed=seed, max_length=limit, suffix=suffix)
    return name.lower() if rtype in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2") else name


# Ids that lookups (invokes) return, by function: EC2 prefixes, Route 53 zone ids.
_LOOKUP_ID_PREFIX = {
    "getAmi": "ami", "getAmiIds": "ami", "getVpc": "vpc", "getVpcs": "vpc", "getSubnet": "subnet",
    "getSubnets": "subnet", "getSecurityGroup": "sg", "getSecurityGroups": "sg", "getInternetGateway": "igw",
    "getRouteTable": "rtb", "getRouteTables": "rtb", "getNatGateway": "nat", "getInstance": "i", "getInstances": "i",
    "getLaunchTemplate": "lt", "getKeyPair": "key", "getVpcEndpoint": "vpce", "getNetworkInterface": "eni",
    "getEip": "eipalloc", "getTransitGateway": "tgw",
}


def lookup_id(token: str, seed: str) -> str | None:
    """The id a lookup returns (``aws.ec2.get_vpc(...).id`` is ``vpc-...``), or None when its shape is unknown."""
    function = token.rsplit(":", 1)[-1]
    if function in _LOOKUP_ID_PREFIX:
        return f"{_LOOKUP_ID_PREFIX[function]}-{digest(seed, 'id', length=17)}"
    if token.startswith("aws:route53/getZone"):
        return "Z" + digest(seed, "zone", length=20).upper()
    return None


def resource_id(rtype: str, logical: str, inputs: Mapping[str, Any], seed: str, region: str) -> str:
    """A realistic id for a resource type (the value ``resource.id`` resolves to after an update)."""
    looked_up = lookup_id(rtype, seed) if "/get" in rtype else None
    if looked_up is not None:
        return looked_up
    if rtype in _EC2_PREFIX:
        return f"{_EC2_PREFIX[rtype]}-{digest(seed, 'id', length=17)}"
    if rtype in _ARN_IS_ID:
        return arn(rtype, logical, inputs, seed, region)
    if rtype in _NAME_IS_ID:
        return physical_name(rtype, logical, inputs, seed)
    if rtype == "aws:sqs/queue:Queue":
        return f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical_name(rtype, logical, inputs, seed)}"
    if rtype == "aws:kms/key:Key":
        return _uuid(seed)
    if rtype.startswith("aws:"):
        return f"{logical}-{digest(seed, 'id')}"
    return f"{logical}-{digest(seed, 'id')}"


def arn(rtype: str, logical: str, inputs: Mapping[str, Any], seed: str, region: str) -> str:
    """An ARN in the real format of ``rtype`` for the stand-in account. Never contains a wildcard."""
    service, resource, regional = _ARN_SHAPES.get(rtype) or _generic_shape(rtype)
    name = physical_name(rtype, logical, inputs, seed)
    path = inputs.get("path") if isinstance(inputs.get("path"), str) and inputs.get("path") else "/"
    host = str(inputs.get("url") or "").split("://", 1)[-1].rstrip("/") or f"{name}.example.invalid"
    values = {"name": name, "path": path if path.startswith("/") else "/" + path,
              "oidc_host": host, "uuid": _uuid(seed), "short": digest(seed, "s", length=6),
              "hex16": digest(seed, "h", length=16), "hex16b": digest(seed, "l", length=16),
              "family": str(inputs.get("family") or name), "id": resource_id_short(seed)}
    text = resource.format(**values)
    if regional == "apigw":
        return f"arn:{PARTITION}:apigateway:{region}::{text}"
    if regional is None:  # S3: no region, no account
        return f"arn:{PARTITION}:{service}:::{text}"
    return f"arn:{PARTITION}:{service}:{region if regional else ''}:{ACCOUNT}:{text}"


def resource_id_short(seed: str) -> str:
    return digest(seed, "short", length=10)


def _generic_shape(rtype: str) -> tuple[str, str, bool]:
    package, _, rest = rtype.partition(":")
    module = rest.split("/")[0].split(":")[0]
    kind = rest.rsplit(":", 1)[-1]
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()
    return module or package, f"{kebab}/{{name}}", True


def ip_address(seed: str) -> str:
    return _IP_BASE + str(int(digest(seed, "ip", length=4), 16) % 250 + 2)


def string_for(field: str, *, rtype: str, logical: str, inputs: Mapping[str, Any], seed: str, region: str,
               path: str = "") -> str:
    """A placeholder string for output ``field`` of ``rtype`` (``path`` is the dotted location inside nested
    values). Known kinds of fields get realistic values; anything else gets ``<logical>-<field>-<hash>``."""
    lower = field.lower()
    if lower == "arn" and not path:
        return arn(rtype, logical, inputs, seed, region)
    if lower in ("id",) and not path:
        return resource_id(rtype, logical, inputs, seed, region)
    if lower in ("name", "bucket", "keyname", "identifier", "functionname", "clustername") and not path:
        return physical_name(rtype, logical, inputs, seed)
    if lower.endswith("arn"):
        return f"arn:{PARTITION}:{_service_of(rtype)}:{region}:{ACCOUNT}:{_kebab(field[:-3] or 'resource')}/" \
               f"{logical}-{digest(seed, field)}"
    if lower in ("accountid", "ownerid", "owneraccountid", "account"):
        return ACCOUNT
    if lower in ("region", "awsregion"):
        return region
    if "ipaddress" in lower or lower in ("publicip", "privateip", "ip"):
        return ip_address(seed + field)
    if lower.endswith("dns") or "dnsname" in lower or "domainname" in lower or lower.endswith("hostname") \
            or lower in ("endpoint", "address", "fqdn", "apiendpoint", "websiteendpoint", "websitedomain"):
        return f"{logical.lower()}-{digest(seed, field)}.{region}.example.invalid"
    if "url" in lower or lower.endswith(("uri", "uris")):
        return f"https://{logical.lower()}-{digest(seed, field)}.{region}.example.invalid/"
    if "cidr" in lower:
        return "10.0.0.0/16"
    if lower.endswith("zoneid") or lower == "zoneid":
        return "Z" + digest(seed, field, length=20).upper()
    if lower == "id" and "/get" in rtype:  # the ids of a plural lookup (get_subnets().ids)
        return lookup_id(rtype, seed) or f"{logical}-{digest(seed, field)}"
    if lower.endswith("id"):
        return f"{_kebab(field[:-2]) or 'id'}-{digest(seed, field, length=17)}"
    if "date" in lower or "time" in lower or lower.endswith("at"):
        return "2024-01-01T00:00:00Z"
    if lower in ("data", "certificatedata", "certificatepem", "publickey", "privatekey", "publickeypem",
                 "privatekeypem", "publickeyopenssh", "result", "hex", "b64std", "b64url", "base64"):
        return f"c3RhbmQtaW4t{digest(seed, field, length=16)}"  # base64-safe, decodes to "stand-in-..."
    if lower in ("version", "latestrevision", "revision"):
        return "1"
    return f"{logical}-{_kebab(field)}-{digest(seed, field, length=6)}"


def _service_of(rtype: str) -> str:
    shape = _ARN_SHAPES.get(rtype)
    return shape[0] if shape else _generic_shape(rtype)[0]


def _kebab(text: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", text).lower().strip("-_")


def number_for(field: str) -> int:
    lower = field.lower()
    if "port" in lower:
        return 443
    if lower in ("count", "desiredcount", "shardcount"):
        return 1
    return 1


# Map outputs whose keys a program reads by name: the keys the provider fills.
KNOWN_MAP_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("aws:appsync/graphQLApi:GraphQLApi", "uris"): ("GRAPHQL", "REALTIME"),
}


def is_safe_placeholder(text: str) -> bool:
    """A placeholder never contains a wildcard and never names an account other than :data:`ACCOUNT`."""
    if "*" in text or "?" in text:
        return False
    for match in re.finditer(r"arn:[^:]*:[^:]*:[^:]*:([0-9]{12}):", text):
        if match.group(1) != ACCOUNT:
            return False
    return True
