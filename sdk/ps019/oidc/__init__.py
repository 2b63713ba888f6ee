"""The CI OIDC edge: find the job's ID token (``source``), fetch or read the issuer's keys (``jwks``) and verify the
token (``verify``). The pure half -- settings, the facts a verified token states, the per-tier claim rules -- is
``ps019.gate.ci_identity``. ``local_issuer`` is a throwaway issuer for the demo and the tests."""

from ps019.oidc.source import ci_identity, find_token
from ps019.oidc.verify import verify_token

__all__ = ["ci_identity", "find_token", "verify_token"]
