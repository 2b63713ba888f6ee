"""Who is running ``pulumi up``: the edge that asks AWS, once per run.

``lookup_deploy_identity`` calls STS GetCallerIdentity with the credentials the process inherited, and for a role
reads the role's attached and inline policies through the IAM API and runs each through ``ps019.iam.analyze_policy``.
It never raises: no credentials, a dead endpoint or AccessDenied become text in ``error`` / ``policies_error`` that
the PS019-IDENTITY-004 control reports. botocore timeouts and retries are kept short (see ``IdentitySettings``) so a
dead endpoint costs seconds, not minutes.

Where the calls go is decided by the pack config alone (``identity.endpoints``; default: AWS's own endpoints). boto3
would otherwise honour ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_STS``, ``endpoint_url`` and ``services`` sections in
the shared config file, endpoint rule sets under ``AWS_DATA_PATH`` or ``~/.aws/models``, proxies and ``AWS_CA_BUNDLE``:
each is something the person running ``pulumi up`` can set, and each lets a 40-line local server answer
``GetCallerIdentity`` with any ARN. They are ignored, and their names (never their values) are recorded in
``ignored_overrides``.

The result is a plain frozen dataclass (``ps019.iam.deploy_identity``, core): controls judge it (``ps019.controls.identity``) and the evidence record keeps
``to_evidence()``. It never holds credentials.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from dataclasses import replace
from typing import Any, Mapping

import structlog

from ps019.iam.arns import classify_caller_arn
from ps019.iam.deploy_identity import DEFAULT_ENDPOINT_SOURCE, DeployIdentity, RolePolicyResult
from ps019.aws.settings import REGION_NAME, IdentitySettings

log = structlog.get_logger(__name__)

CONFIGURED_ENDPOINT_SOURCE = "pack config identity.endpoints.sts"
# Transport settings boto3 would take from the environment; any of them can redirect or intercept the STS call.
_TRANSPORT_ENV = ("AWS_CA_BUNDLE", "AWS_DATA_PATH", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                  "ALL_PROXY", "all_proxy")
# Keys of the shared config file's profile that would do the same.
_CONFIG_FILE_KEYS = ("endpoint_url", "services", "ca_bundle")
# Code injected into the pack process itself cannot be ignored from inside it (docs/threat-model.md): named only.
_PROCESS_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "LD_PRELOAD", "DYLD_INSERT_LIBRARIES")

_MAX_POLICIES = 50  # AWS allows 20 attached policies per role (quota) and inline policies up to 10,240 bytes in total


_cache: dict[tuple, DeployIdentity] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def lookup_deploy_identity(settings: IdentitySettings | None = None, *, session: Any = None,
                           use_cache: bool = True) -> DeployIdentity:
    """Ask AWS who the inherited credentials belong to (cached per credentials + endpoint + region for the process,
    which lives for one engine run). Never raises. Only ``settings.endpoints`` decides where the calls go."""
    settings = settings or IdentitySettings()
    ignored: tuple[str, ...] = ()
    try:
        session = harden_session(session or _new_session(settings))
        ignored = ignored_overrides(os.environ, session)
        region, region_note = _region(settings, session)
        if region_note:
            ignored += (region_note,)
        credentials = session.get_credentials()
        if credentials is None:
            return _unknown(settings, ignored, "no AWS credentials found in the environment of the pulumi process")
        key = (credentials.access_key, settings.endpoints.sts, settings.endpoints.iam, region,
               settings.fetch_role_policies, settings.ca_bundle)
        if use_cache:
            with _cache_lock:
                if key in _cache:
                    return _cache[key]
        identity = replace(_lookup(session, settings, region), sts_endpoint=settings.endpoints.sts,
                           endpoint_source=_source(settings), ignored_overrides=ignored)
        if use_cache:
            with _cache_lock:
                _cache[key] = identity
        return identity
    except Exception as exc:  # noqa: BLE001 - an edge must report, never crash the pack
        return _unknown(settings, ignored, _describe_error("STS GetCallerIdentity", exc))


def _source(settings: IdentitySettings) -> str:
    return CONFIGURED_ENDPOINT_SOURCE if settings.endpoints.sts else DEFAULT_ENDPOINT_SOURCE


def _unknown(settings: IdentitySettings, ignored: tuple[str, ...], error: str) -> DeployIdentity:
    return DeployIdentity(arn=None, account=None, kind="unknown", error=error, sts_endpoint=settings.endpoints.sts,
                          endpoint_source=_source(settings), ignored_overrides=ignored)


def ignored_overrides(environ: Mapping[str, str], session: Any) -> tuple[str, ...]:
    """Names of the endpoint and transport overrides present in the environment or the shared config file, all of
    which the lookup ignores; plus process-level injection variables it cannot ignore (named for the record)."""
    names = sorted(n for n, v in environ.items()
                   if v and (n == "AWS_ENDPOINT_URL" or n.startswith("AWS_ENDPOINT_URL_")))
    names += [n for n in _TRANSPORT_ENV if environ.get(n)]
    core = getattr(session, "_session", session)
    try:
        scoped = core.get_scoped_config() or {}
    except Exception:  # noqa: BLE001 - a missing profile: botocore reports it when the credentials are read
        scoped = {}
    names += [f"config file: {k}" for k in _CONFIG_FILE_KEYS if k in scoped]
    names += [f"{n} (set in the pack process; not ignorable)" for n in _PROCESS_ENV if environ.get(n)]
    return tuple(names)


def harden_session(session: Any) -> Any:
    """Make botocore load endpoint rule sets and service models only from its own package (not ``AWS_DATA_PATH``,
    not ``~/.aws/models``)."""
    import botocore.loaders

    core = getattr(session, "_session", session)
    loader = botocore.loaders.Loader(extra_search_paths=[botocore.loaders.Loader.BUILTIN_DATA_PATH],
                                     include_default_search_paths=False)
    core.register_component("data_loader", loader)
    return session


def _new_session(settings: IdentitySettings) -> Any:
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    # The credential chain may fall through to the instance-metadata service; bound it like every other call.
    core.set_config_variable("metadata_service_timeout", settings.connect_timeout_seconds)
    core.set_config_variable("metadata_service_num_attempts", 1)
    harden_session(core)
    return boto3.session.Session(botocore_session=core)


def _region(settings: IdentitySettings, session: Any) -> tuple[str, str | None]:
    """(region, note): the configured region, else the session's / environment's when it is a region name."""
    if settings.region:
        return settings.region, None
    found = (getattr(session, "region_name", None) or os.environ.get("AWS_REGION")
             or os.environ.get("AWS_DEFAULT_REGION"))
    if found and not REGION_NAME.match(found):
        return "us-east-1", "region from the environment or config file (not a region name; us-east-1 used)"
    return found or "us-east-1", None


def _client(session: Any, service: str, settings: IdentitySettings, region: str) -> Any:
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        ignore_configured_endpoint_urls=True,  # never AWS_ENDPOINT_URL*, endpoint_url or services in a config file
        proxies={},  # never HTTPS_PROXY & co.
    )
    return session.client(service, region_name=region, config=config, endpoint_url=getattr(settings.endpoints, service),
                          verify=settings.ca_bundle or True)  # never AWS_CA_BUNDLE / ca_bundle from a config file


def _lookup(session: Any, settings: IdentitySettings, region: str) -> DeployIdentity:
    try:
        answer = _client(session, "sts", settings, region).get_caller_identity()
    except Exception as exc:  # noqa: BLE001
        return DeployIdentity(arn=None, account=None, kind="unknown", error=_describe_error("STS GetCallerIdentity", exc))
    arn = answer.get("Arn")
    caller = classify_caller_arn(arn)
    identity = DeployIdentity(
        arn=arn, account=answer.get("Account") or caller.account or None, kind=caller.kind,
        role_name=caller.role_name, session_name=caller.session_name, role_arn=caller.role_arn("/"),
        iam_data_version=_iam_data_version(),
    )
    if caller.kind in ("assumed-role", "role") and settings.fetch_role_policies:
        identity = _with_role_policies(identity, _client(session, "iam", settings, region))
    log.debug("deploy identity looked up", kind=identity.kind, arn=identity.arn, error=identity.error,
              policies_error=identity.policies_error)
    return identity


def _with_role_policies(identity: DeployIdentity, iam: Any) -> DeployIdentity:
    from dataclasses import replace

    role_name = identity.role_name
    results: list[RolePolicyResult] = []
    role_arn = identity.role_arn
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
        role_arn = role.get("Arn") or role_arn
    except Exception as exc:  # noqa: BLE001 - the role's path is a nicety; the policies below are what matter
        log.debug("iam get_role failed", role=role_name, error=str(exc))
    try:
        for attached in _paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role_name):
            results.append(_managed_policy_result(iam, attached["PolicyName"], attached["PolicyArn"]))
        for policy_name in _paginate(iam, "list_role_policies", "PolicyNames", RoleName=role_name):
            try:
                document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
                results.append(_analysed(policy_name, "inline", None, document))
            except Exception as exc:  # noqa: BLE001
                results.append(RolePolicyResult(policy_name, "inline", verdict="unreadable",
                                                error=_describe_error("IAM GetRolePolicy", exc)))
    except Exception as exc:  # noqa: BLE001
        return replace(identity, role_arn=role_arn, policy_results=tuple(results),
                       policies_error=_describe_error(f"reading the policies of role {role_name}", exc))
    unreadable = [r for r in results if r.verdict == "unreadable"]
    policies_error = None
    if unreadable:
        policies_error = "; ".join(f"{r.name}: {r.error}" for r in unreadable)
    return replace(identity, role_arn=role_arn, policy_results=tuple(results), policies_error=policies_error)


def _paginate(iam: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for page in iam.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, ()))
        if len(items) >= _MAX_POLICIES:
            break
    return items[:_MAX_POLICIES]


def _managed_policy_result(iam: Any, name: str, arn: str) -> RolePolicyResult:
    from ps019.iam import is_admin_equivalent_managed_policy

    if is_admin_equivalent_managed_policy(arn):
        return RolePolicyResult(name, "managed", arn, verdict="deny", admin_equivalent=True,
                                categories=("admin-equivalent managed policy",),
                                findings=(f"{arn} is an admin-equivalent managed policy",))
    try:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    except Exception as exc:  # noqa: BLE001
        return RolePolicyResult(name, "managed", arn, verdict="unreadable", error=_describe_error("IAM GetPolicyVersion", exc))
    return _analysed(name, "managed", arn, document)


def _analysed(name: str, source: str, arn: str | None, document: Any) -> RolePolicyResult:
    from ps019.controls.iam.documents import finding_category, finding_line, is_full_admin

    if isinstance(document, str):
        # The IAM API returns URL-encoded JSON; boto3 normally decodes it already.
        try:
            document = json.loads(urllib.parse.unquote(document))
        except ValueError:
            pass
    from ps019.iam import analyze_policy

    result = analyze_policy(document, kind="identity")
    findings = tuple(result.findings or ())
    return RolePolicyResult(
        name, source, arn, verdict=result.verdict,
        admin_equivalent=any(is_full_admin(f) for f in findings),
        categories=tuple(dict.fromkeys(finding_category(f) for f in findings)),
        findings=tuple(finding_line(f) for f in findings),
        error=result.message if result.verdict == "error" else None,
    )


def _iam_data_version() -> str | None:
    try:
        from ps019.iam import IAM_DATA_VERSION

        return str(IAM_DATA_VERSION)
    except Exception:  # noqa: BLE001 - the analysis core may be absent in a stripped install
        return None


def _describe_error(what: str, exc: BaseException) -> str:
    """One line naming the failed call and the cause; botocore messages carry no secrets."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if name == "NoCredentialsError":
        return "no AWS credentials found in the environment of the pulumi process"
    return f"{what} failed: {name}: {text}"[:500]
