"""``redact_forbidden``: replace every occurrence of a known plaintext secret in a record by ``[secret]``.

A secret reaches a record through a message that quotes a property value: as it is, lowercased (IAM actions and
condition keys are normalised, so a secret inside a ``NotAction`` comes back in lower case), upper-cased,
JSON-escaped (with or without ``\\uXXXX`` escapes), as a Python ``repr``, with ``unicode_escape``, URL-encoded, or in
another Unicode normal form. Every one of those forms is matched, case-insensitively, as a substring for secrets of
4+ characters and as a whole string for shorter ones; keys and values alike.

The search is one Aho-Corasick pass (``pyahocorasick``) over the serialised document, so a 10,000-resource record
with thousands of secrets costs tens of milliseconds, not one scan per secret; only strings that hold a match are
rewritten. Secrets longer than 512 characters (certificates, whole config files) are few; their forms are searched
one by one, so the automaton's memory stays bounded. Only the number of replacements is logged, never a value.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

import ahocorasick
import structlog

from ps019.model import SECRET_PLACEHOLDER

log = structlog.get_logger(__name__)

MIN_SUBSTRING_SECRET = 4  # shorter secrets are redacted only where a whole string equals them (in any form)
_AUTOMATON_MAX = 512  # longer secrets are few; their forms are searched one by one (bounded memory)


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")  # characters no quoting form changes
# identifiers and digests (UUIDs, hex, sha256:<hex>): only a secret at least this long is searched inside them
_OPAQUE = re.compile(r"(?:sha256:)?[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OPAQUE_MIN = 16


def quoted_forms(secret: str) -> set[str]:
    """The forms in which a message can quote ``secret``, lower-cased (matching is case-insensitive), plus each
    form as it appears inside serialised JSON."""
    if _PLAIN.fullmatch(secret):  # the common case: every form is the secret itself
        return {secret.lower()}
    forms = {secret, unicodedata.normalize("NFC", secret), unicodedata.normalize("NFD", secret),
             unicodedata.normalize("NFKC", secret)}
    for form in list(forms):
        forms |= {json.dumps(form, ensure_ascii=False)[1:-1], json.dumps(form)[1:-1], repr(form)[1:-1],
                  form.encode("unicode_escape").decode("ascii"), quote(form, safe=""), quote_plus(form, safe="")}
    forms = {f.lower() for f in forms if f} | {f.upper().lower() for f in forms if f}
    return forms | {json.dumps(f, ensure_ascii=False)[1:-1] for f in forms}


class _Matcher:
    """One automaton over every form of every secret. Because the forms include each one's JSON-escaped text, the
    same automaton finds a secret inside the serialised document (the fast exit) and inside a single string."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.whole: set[str] = set()  # short secrets, every form: only whole strings
        self.long: set[str] = set()  # forms of long secrets (a certificate, a config file): searched one by one
        self.automaton = ahocorasick.Automaton()
        for secret in secrets:
            forms = quoted_forms(secret)
            if len(secret) < MIN_SUBSTRING_SECRET:
                self.whole |= forms
            elif len(secret) > _AUTOMATON_MAX:  # the automaton's memory grows with the total length of its words
                self.long |= forms
            else:
                for form in forms:
                    self.automaton.add_word(form, form)
        self.substring = len(self.automaton) > 0
        if self.substring:
            self.automaton.make_automaton()

    def may_occur_in(self, text: str) -> bool:
        lowered = text.lower()
        if self.substring:
            for _ in self.automaton.iter(lowered):
                return True
        if any(form in lowered for form in self.long):
            return True
        return bool(self.whole) and any(json.dumps(w, ensure_ascii=False) in lowered for w in self.whole)

    def _found(self, lowered: str) -> set[str]:
        found = {form for _, form in self.automaton.iter(lowered)} if self.substring else set()
        return found | {form for form in self.long if form in lowered}

    def clean(self, s: str, count: list[int]) -> str:
        lowered = s.lower()
        if lowered in self.whole:
            count[0] += 1
            return SECRET_PLACEHOLDER
        found = self._found(lowered)
        if found and _OPAQUE.fullmatch(lowered):
            # a record ID, a digest: a short secret inside one is a coincidence of hex digits, not a quote; rewriting
            # it would corrupt the record (its ID, its resources' digests). A long secret there is redacted still.
            found = {form for form in found if len(form) >= _OPAQUE_MIN}
        if not found:
            return s
        pattern = re.compile("|".join(re.escape(f) for f in sorted(found, key=len, reverse=True)), re.IGNORECASE)
        out, n = pattern.subn(SECRET_PLACEHOLDER, s)
        if n == 0 or self._found(out.lower()):
            # The lower-cased form matched where the case-insensitive pattern could not place it (a character whose
            # lower case is longer): fail closed with the whole string.
            count[0] += 1
            return SECRET_PLACEHOLDER
        count[0] += n
        return out


def redact_forbidden(document: Any, forbidden: set[str] | frozenset[str]) -> Any:
    """``document`` with every occurrence of a value in ``forbidden``, in every quoted form and any case, replaced by
    ``[secret]`` (keys and values). The same object comes back when nothing matches."""
    secrets = {v for v in forbidden if v}
    if not secrets:
        return document
    matcher = _Matcher(secrets)
    if not matcher.may_occur_in(json.dumps(document, ensure_ascii=False)):
        return document
    count = [0]

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return matcher.clean(node, count)
        if isinstance(node, dict):
            return {matcher.clean(k, count): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(document)
    if count[0]:
        log.warning("evidence.secret_redacted", replacements=count[0])
    return result
