"""Errors a user can act on. The CLI prints ``str(error)`` on one line and exits with ``exit_code``; nothing here
should ever surface as a traceback."""


class Ps019Error(Exception):
    """Unusable input or environment (exit status 2)."""

    exit_code = 2


class InputError(Ps019Error):
    """A file, flag or document the user supplied cannot be used."""


class PackError(Ps019Error):
    """The policy pack process could not be started, crashed, or did not answer in time."""


class StoreError(Ps019Error):
    """The evidence store is unreachable or refused the operation."""


class IntegrityError(Ps019Error):
    """A signature, hash chain or sequence check failed (exit status 1: the check ran and found a problem)."""

    exit_code = 1
