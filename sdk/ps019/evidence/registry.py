"""``open_store``: the evidence store for a URL, chosen by its scheme.

The registry maps a URL scheme to the back end that opens it. Back ends are imported only when their scheme is used
(boto3 and psycopg stay unloaded for a sqlite store), and they depend on the interface in ``ps019.evidence.store``,
never on this module or on each other. :func:`register_scheme` adds a back end (e.g. a test double).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from ps019.errors import InputError
from ps019.evidence.paths import resolve_store_url
from ps019.evidence.store import EvidenceStore

Opener = Callable[[str, Any], EvidenceStore]

# scheme -> "module:function"; the function takes (url, settings) and returns an open store
_BUILTIN: dict[str, str] = {
    "sqlite": "ps019.evidence.sqlite_store:open_url",
    "s3": "ps019.evidence.s3_store:open_url",
    "postgresql": "ps019.evidence.pg_store:open_url",
    "postgres": "ps019.evidence.pg_store:open_url",
}
_REGISTERED: dict[str, Opener] = {}


def register_scheme(scheme: str, opener: Opener) -> None:
    """Open URLs of ``scheme`` with ``opener(url, settings)`` (overrides a built-in back end)."""
    _REGISTERED[scheme.lower()] = opener


def schemes() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def opener_for(url: str) -> Opener:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in _REGISTERED:
        return _REGISTERED[scheme]
    target = _BUILTIN.get(scheme)
    if target is None:
        raise InputError(f"unsupported evidence store URL scheme: {scheme or url!r} "
                         "(use sqlite:///path, s3://bucket/prefix or postgresql://...)")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def open_store(url: str | None = None, settings: Any = None) -> EvidenceStore:
    """The store for ``url`` (None -> ``settings.store_url`` -> ``$PS019_EVIDENCE_STORE`` -> per-user sqlite). With
    ``settings.checkpoints``, the store publishes a signed checkpoint after every append and reads them back
    (``ps019.evidence.witness``)."""
    url = resolve_store_url(url or getattr(settings, "store_url", None))
    store = opener_for(url)(url, settings)
    if getattr(settings, "checkpoints", None) is not None:
        from ps019.evidence.witness import open_witness

        try:
            store.witness = open_witness(settings, store.url)
        except BaseException:
            store.close()
            raise
    return store
