"""Where a command writes its ``--out``/``-o``: missing parent directories are created, and anything that stops the
write (a parent that is a file, no permission) is one line naming the path, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from ps019.errors import InputError


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a directory (the reason mkdir cannot work)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def prepare_directory(directory: str | os.PathLike, flag: str = "--out") -> Path:
    """``directory`` exists afterwards (created with its parents), or :class:`InputError` says why not."""
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {directory}: is a file, not a directory")
    blocker = _blocking_file(path)
    if blocker is not None:
        raise InputError(f"{flag} {directory}: cannot create it because {blocker} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{flag} {directory}: cannot create the directory ({exc.strerror or exc})") from None
    return path


def prepare_output(file: str | os.PathLike, flag: str = "--out") -> Path:
    """The parent directories of ``file`` exist afterwards, or :class:`InputError` says why they cannot."""
    path = Path(file).expanduser()
    if path.is_dir():
        raise InputError(f"{flag} {file}: is a directory; give a file name")
    parent = path.parent
    blocker = _blocking_file(path)
    if blocker is not None:
        raise InputError(f"{flag} {file}: cannot write there because {blocker} is a file, not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{flag} {file}: cannot create {parent} ({exc.strerror or exc})") from None
    return path
