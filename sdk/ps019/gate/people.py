"""One person, however many names: the only place ps019 decides whether two identities are the same human.

Every separation-of-duties check (author, approver, deployer, grant operator, reviewer) and the N-of-M approval count
go through :class:`People`, so a name is normalised the same way everywhere. A person's names come from:

1. ``gate.people`` (the directory): person -> the identities that are theirs: e-mail, CI login, OIDC subject, AWS ARN,
   each exact or an fnmatch pattern (``arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_*/alice@example.com``);
2. ``gate.identityAliases`` (canonical name -> other names), the older, exact-only form;
3. for an AWS ARN, its last path segment: the role-session name (how SSO names the human) or the IAM user's name;
4. otherwise the identity itself.

Names are compared after ``strip()`` and ``casefold()``; Unicode is not otherwise normalised (a look-alike is another
name, never silently the same one).
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Mapping


def _norm(name: str) -> str:
    return name.strip().casefold()


def _session_name(identity: str) -> str | None:
    value = _norm(identity)
    if value.startswith("arn:aws") and "/" in value:
        return value.rsplit("/", 1)[-1] or None
    return None


class People:
    def __init__(self, directory: Mapping[str, Iterable[str]] | None = None,
                 aliases: Mapping[str, Iterable[str]] | None = None) -> None:
        self.directory = {_norm(p): [_norm(n) for n in names] for p, names in (directory or {}).items()}
        self.aliases: dict[str, str] = {}
        for person, names in (aliases or {}).items():
            for name in [person, *names]:
                self.aliases[_norm(name)] = _norm(person)

    @classmethod
    def of(cls, gate_settings: Any) -> "People":
        """From ``GateSettings`` (or a plain mapping of its fields, or None)."""
        if gate_settings is None:
            return cls()
        if isinstance(gate_settings, Mapping):
            return cls(gate_settings.get("people"), gate_settings.get("identity_aliases")
                       or gate_settings.get("identityAliases"))
        return cls(getattr(gate_settings, "people", None), getattr(gate_settings, "identity_aliases", None))

    def _listed(self, name: str) -> str | None:
        for person, names in self.directory.items():
            if name == person or any(fnmatch.fnmatchcase(name, n) if any(c in n for c in "*?[") else name == n
                                     for n in names):
                return person
        return self.aliases.get(name)

    def person(self, identity: str | None) -> str | None:
        """The canonical person of ``identity`` (None for no identity)."""
        if not identity or not identity.strip():
            return None
        name = _norm(identity)
        found = self._listed(name)
        if found:
            return found
        session = _session_name(identity)
        if session:
            return self._listed(session) or session
        return name

    def listed(self, identity: str | None) -> bool:
        """Whether the directory (``gate.people``) names this identity (directly or through its session name)."""
        if not identity or not self.directory:
            return False
        name = _norm(identity)
        session = _session_name(identity)
        return any(self._in_directory(n) for n in (name, session) if n)

    def _in_directory(self, name: str) -> bool:
        return any(name == person or any(fnmatch.fnmatchcase(name, n) if any(c in n for c in "*?[") else name == n
                                         for n in names) for person, names in self.directory.items())

    def same(self, a: str | None, b: str | None) -> bool:
        pa, pb = self.person(a), self.person(b)
        return pa is not None and pa == pb
