"""A synthetic ``pulumi stack export`` (deployment v3) of N AWS-like resources: ~30 keys each, nested tags, lists
of objects, nulls, a secret now and then, one default provider. Shared by the benchmarks."""

from __future__ import annotations

import json
import random

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def _secret(value):
    return {**SECRET_SIG, "plaintext": json.dumps(value)}


def _common(rng, i):
    return {
        "tags": {"team": f"team-{i % 7}", "env": "dev", "cost-center": str(1000 + i % 50), "owner": "platform"},
        "tagsAll": {"team": f"team-{i % 7}", "env": "dev", "managed-by": "pulumi"},
        "region": "us-east-1",
        **{f"attr{k}": (rng.random() if k % 3 == 0 else f"value-{k}-{i}" if k % 3 == 1 else None) for k in range(14)},
    }


def _bucket(rng, i):
    return {"bucket": f"bench-bucket-{i}", "acl": "private", "forceDestroy": False,
            "serverSideEncryptionConfiguration": {"rule": {"applyServerSideEncryptionByDefault":
                                                           {"sseAlgorithm": "aws:kms"}}},
            "versioning": {"enabled": True, "mfaDelete": False},
            "lifecycleRules": [{"enabled": True, "expiration": {"days": 90}, "prefix": "logs/"}],
            "corsRules": [], "website": None, "logging": {"targetBucket": "logs", "targetPrefix": f"b{i}/"},
            "objectLockEnabled": False, "requestPayer": "BucketOwner", "hostedZoneId": "Z3AQBSTGFYJSTF",
            "accelerationStatus": None}


def _instance(rng, i):
    return {"ami": "ami-0abcdef1234567890", "instanceType": rng.choice(["t3.micro", "m5.large"]),
            "subnetId": f"subnet-{i:08x}", "vpcSecurityGroupIds": [f"sg-{i:08x}"], "associatePublicIpAddress": False,
            "monitoring": True, "ebsOptimized": True, "rootBlockDevice": {"volumeSize": 20.0, "encrypted": True},
            "metadataOptions": {"httpTokens": "required", "httpEndpoint": "enabled"},
            "userData": _secret("#!/bin/bash\necho hello") if i % 5 == 0 else None, "keyName": None,
            "iamInstanceProfile": f"profile-{i % 3}", "disableApiTermination": False, "tenancy": "default"}


def _security_group(rng, i):
    return {"description": f"sg {i}", "vpcId": "vpc-123",
            "ingress": [{"fromPort": 443.0, "toPort": 443.0, "protocol": "tcp", "cidrBlocks": ["10.0.0.0/8"]}],
            "egress": [{"fromPort": 0.0, "toPort": 0.0, "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}],
            "revokeRulesOnDelete": False, "namePrefix": None, "name": f"sg-{i}", "ownerId": "123456789012",
            "arnSuffix": f"sg-{i:08x}", "extra1": None, "extra2": None, "extra3": None, "extra4": None}


def _database(rng, i):
    return {"engine": "postgres", "engineVersion": "15.4", "instanceClass": "db.t3.micro", "allocatedStorage": 20.0,
            "username": "app", "password": _secret(f"pw-{rng.random()}"), "storageEncrypted": True,
            "publiclyAccessible": False, "backupRetentionPeriod": 7.0, "multiAz": False, "skipFinalSnapshot": False,
            "deletionProtection": True, "dbSubnetGroupName": "db", "parameterGroupName": "default.postgres15",
            "vpcSecurityGroupIds": [f"sg-{i:08x}"]}


def _function(rng, i):
    return {"runtime": "python3.12", "handler": "app.handler", "role": f"arn:aws:iam::123456789012:role/fn-{i}",
            "memorySize": 256.0, "timeout": 30.0, "architectures": ["arm64"],
            "environment": {"variables": {"LOG_LEVEL": "info", "API_KEY": "x"}},
            "tracingConfig": {"mode": "Active"}, "publish": False, "reservedConcurrentExecutions": -1.0,
            "code": {"4dabf18193072939515e22adb298388d": "0def7320c3a5731c473e5ecbe6d01bc7", "path": "./app"},
            "layers": [], "packageType": "Zip", "description": f"function {i}", "kmsKeyArn": None}


def _role(rng, i):
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    inline = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                                                      "Resource": f"arn:aws:s3:::bench-bucket-{i}/*"}]}
    return {"name": f"role-{i}", "assumeRolePolicy": json.dumps(trust), "path": "/", "maxSessionDuration": 3600.0,
            "inlinePolicies": [{"name": "app", "policy": json.dumps(inline)}], "managedPolicyArns": [],
            "description": f"role {i}", "forceDetachPolicies": False, "permissionsBoundary": None}


KINDS = [("aws:s3/bucketV2:BucketV2", _bucket), ("aws:ec2/instance:Instance", _instance),
         ("aws:ec2/securityGroup:SecurityGroup", _security_group), ("aws:rds/instance:Instance", _database),
         ("aws:lambda/function:Function", _function), ("aws:iam/role:Role", _role)]


def make_export(n: int, stack: str = "dev", project: str = "bench", seed: int = 1) -> dict:
    rng = random.Random(seed)
    root = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    provider = f"urn:pulumi:{stack}::{project}::pulumi:providers:aws::default_7_0_0"
    resources = [
        {"urn": root, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": {}},
        {"urn": provider, "custom": True, "id": "prov-1", "type": "pulumi:providers:aws",
         "inputs": {"region": "us-east-1", "version": "7.0.0"}, "outputs": {"region": "us-east-1", "version": "7.0.0"}},
    ]
    for i in range(n):
        rtype, make = KINDS[i % len(KINDS)]
        props = {**_common(rng, i), **make(rng, i)}
        resources.append({
            "urn": f"urn:pulumi:{stack}::{project}::{rtype}::r{i}", "custom": True, "id": f"id-{i}", "type": rtype,
            "inputs": props, "outputs": {**props, "arn": f"arn:aws:x:::r{i}", "id": f"id-{i}"}, "parent": root,
            "provider": f"{provider}::prov-1", "dependencies": [], "propertyDependencies": {},
        })
    return {"version": 3, "deployment": {
        "manifest": {"time": "2026-11-22T00:00:00Z", "magic": "bench", "version": "v3.200.0"},
        "secrets_providers": {"type": "passphrase", "state": {"salt": "bench"}},
        "resources": resources}}
