"""The SQL both relational back ends share: the WHERE clause of a :class:`~ps019.evidence.store.Query` over their
(identical) indexed columns, and the store-wide newest-first SELECT."""

from __future__ import annotations

from typing import Any

from ps019.evidence.record import format_utc


def sql_where(q: Any, placeholder: str, like_escape: str = "", bools_as_int: bool = False) -> tuple[list[str], list]:
    """The WHERE conditions of a ``Query`` for the SQL stores (their indexed columns are the same); each store only
    brings its placeholder style, its LIKE escape clause and how it stores booleans."""
    where: list[str] = []
    args: list = []
    ph = placeholder
    if q.stack:
        if "/" in q.stack:
            where.append(f"stack = {ph}")
            args.append(q.stack)
        else:  # a short stack name matches any org/project
            where.append(f"stack LIKE {ph}{like_escape}")
            args.append("%/" + q.stack.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    for column, value in (("environment", q.environment), ("change_class", q.change_class), ("actor", q.actor)):
        if value:
            where.append(f"{column} = {ph}")
            args.append(value)
    if q.kind:
        where.append(f"kind = {ph}")
        args.append(getattr(q.kind, "value", q.kind))
    if q.since:
        where.append(f"started_at >= {ph}")
        args.append(format_utc(q.since))
    if q.until:
        where.append(f"started_at < {ph}")
        args.append(format_utc(q.until))
    if getattr(q, "started_from", None):
        where.append(f"started_at >= {ph}")
        args.append(q.started_from)
    for column, value in (("break_glass", q.break_glass), ("has_violations", q.with_violations)):
        if value is not None:
            where.append(f"{column} = {ph}")
            args.append(int(value) if bools_as_int else value)
    return where, args


def sql_select(select_from: str, q: Any, placeholder: str, like_escape: str = "",
               bools_as_int: bool = False, order: str = "started_at DESC, id DESC") -> tuple[str, list]:
    """``SELECT … FROM …`` plus the Query's WHERE, the store-wide newest-first order and its LIMIT."""
    where, args = sql_where(q, placeholder, like_escape, bools_as_int)
    sql = select_from + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order}"
    if q.limit:
        sql += f" LIMIT {placeholder}"
        args.append(int(q.limit))
    return sql, args
