"""Sets of actions and of resources as IAM patterns, with the operations exact Deny evaluation needs.

A set is either *positive* (the union of its patterns) or a *complement* (everything except its patterns): ``"*"`` is
the complement of nothing, ``NotAction: [X]`` the complement of X. Complements are never expanded into the ~20,000
actions, so an ``Allow *`` cut down by ``Deny``/``NotAction``/``NotResource`` statements costs a handful of pattern
comparisons.

Every operation returns the exact set or a *superset* of it (never a subset) where patterns overlap in ways text
cannot settle (``s3:*Object`` against ``s3:Get*`` is settled exactly by expanding both against the action index;
``service:*`` minus part of the service stays ``service:*``; overlapping resource globs keep the Allow's pattern).
Since the remaining grant is judged, a superset can only add findings, never hide one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ps019.iam import index as _ix


@lru_cache(maxsize=16384)
def contains(outer: str, inner: str) -> bool:
    """Every string ``inner`` (a pattern) can match is matched by ``outer``. Case-insensitive, like IAM actions."""
    if outer == "*":
        return True
    if not _ix.has_wildcard(outer):
        return not _ix.has_wildcard(inner) and outer.lower() == inner.lower()
    return _ix.glob_regex(outer).fullmatch(inner) is not None


@lru_cache(maxsize=16384)
def _may_overlap(p: str, q: str) -> bool:
    ps, _, _ = p.partition(":")
    qs, _, _ = q.partition(":")
    if ps and qs and not _ix.has_wildcard(ps) and not _ix.has_wildcard(qs) and ps.lower() != qs.lower():
        return False  # actions of two named services (or ARNs of two services' resources) never meet
    if not _ix.has_wildcard(p):
        return _ix.glob_match(q, p)
    if not _ix.has_wildcard(q):
        return _ix.glob_match(p, q)
    return True  # two globs, neither containing the other: undecided by text


def _dedupe(patterns) -> tuple[str, ...]:
    out: list[str] = []
    for p in patterns:
        if p not in out:
            out.append(p)
    return tuple(out)


@dataclass(frozen=True)
class PatternSet:
    """``comp=False``: the union of ``patterns``; ``comp=True``: everything except them."""

    comp: bool
    patterns: tuple[str, ...]

    @classmethod
    def of(cls, patterns, comp: bool = False) -> "PatternSet":
        pats = _dedupe(patterns)
        if "*" in pats:
            return cls(True, ()) if not comp else cls(False, ())  # everything / nothing
        return cls(comp, pats)

    @property
    def empty(self) -> bool:
        return not self.comp and not self.patterns

    @property
    def everything(self) -> bool:
        return self.comp and not self.patterns


EVERYTHING = PatternSet(True, ())
NOTHING = PatternSet(False, ())


# --- actions (lower case "service:name"; "*" only as the whole set) -------------------------------------------------

def _expand_action(p: str) -> tuple[str, ...]:
    if not _ix.has_wildcard(p):
        return (p,)
    return tuple(lower for lower, _canonical, _code in _ix.expand(p))


def _whole_service(p: str) -> bool:
    return set(p.partition(":")[2]) <= {"*"}


def _actions_intersect(ps, qs) -> tuple[str, ...]:
    out: list[str] = []
    for p in ps:
        for q in qs:
            if contains(q, p):
                out.append(p)
            elif contains(p, q):
                out.append(q)
            elif _may_overlap(p, q):
                qx = set(_expand_action(q))
                out.extend(a for a in _expand_action(p) if a in qx)
    return _dedupe(out)


def _actions_minus(ps, qs) -> tuple[str, ...]:
    out: list[str] = []
    for p in ps:
        if any(contains(q, p) for q in qs):
            continue
        overlapping = [q for q in qs if _may_overlap(p, q)]
        if not overlapping or _whole_service(p):
            out.append(p)  # a whole-service wildcard minus some of it is still judged as the service wildcard
            continue
        out.extend(a for a in _expand_action(p) if not any(_ix.glob_match(q, a) for q in overlapping))
    return _dedupe(out)


def action_inter(a: PatternSet, b: PatternSet) -> PatternSet:
    if a.comp and b.comp:
        return PatternSet.of(a.patterns + b.patterns, comp=True)
    if a.comp:
        return PatternSet.of(_actions_minus(b.patterns, a.patterns))
    if b.comp:
        return PatternSet.of(_actions_minus(a.patterns, b.patterns))
    return PatternSet.of(_actions_intersect(a.patterns, b.patterns))


def action_minus(a: PatternSet, b: PatternSet) -> PatternSet:
    if b.empty:
        return a
    if a.comp and b.comp:
        return PatternSet.of(_actions_minus(b.patterns, a.patterns))
    if a.comp:
        return PatternSet.of(a.patterns + b.patterns, comp=True)
    if b.comp:
        return PatternSet.of(_actions_intersect(a.patterns, b.patterns))
    return PatternSet.of(_actions_minus(a.patterns, b.patterns))


# --- resources (ARN globs; open-ended, never expanded) ------------------------------------------------------------

def _resources_intersect(ps, qs) -> tuple[str, ...]:
    out: list[str] = []
    for p in ps:
        for q in qs:
            if contains(q, p):
                out.append(p)
            elif contains(p, q):
                out.append(q)
            elif _may_overlap(p, q):
                out.append(p)  # undecided: keep the larger side (a superset)
    return _dedupe(out)


def _resources_minus(ps, qs) -> tuple[str, ...]:
    return _dedupe(p for p in ps if not any(contains(q, p) for q in qs))


def resource_minus(a: PatternSet, b: PatternSet) -> PatternSet:
    if b.empty:
        return a
    if a.comp and b.comp:
        return PatternSet.of(_resources_minus(b.patterns, a.patterns))
    if a.comp:
        return PatternSet.of(a.patterns + b.patterns, comp=True)
    if b.comp:
        return PatternSet.of(_resources_intersect(a.patterns, b.patterns))
    return PatternSet.of(_resources_minus(a.patterns, b.patterns))


MAX_CLASSES = 64


def subtract_denies(actions: PatternSet, resources: PatternSet,
                    denies: list[tuple[PatternSet, PatternSet]]) -> list[tuple[PatternSet, PatternSet]]:
    """What an Allow of ``actions`` on ``resources`` still grants after each unconditional Deny ``(actions,
    resources)``: a list of (actions, resources) pieces whose union is that grant (or a superset of it).

    Each Deny splits every piece into the actions it covers (their resources shrink) and the rest (unchanged).
    Past MAX_CLASSES pieces the Allow is judged as written (a superset)."""
    pieces = [(actions, resources)]
    for d_actions, d_resources in denies:
        nxt: list[tuple[PatternSet, PatternSet]] = []
        for a, r in pieces:
            covered = action_inter(a, d_actions)
            if covered.empty:
                nxt.append((a, r))
                continue
            rest = action_minus(a, d_actions)
            left = resource_minus(r, d_resources)
            if not left.empty:
                nxt.append((covered, left))
            if not rest.empty:
                nxt.append((rest, r))
        pieces = nxt
        if len(pieces) > MAX_CLASSES:
            return [(actions, resources)]
        if not pieces:
            break
    return pieces
