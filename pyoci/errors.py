"""The one error type: a message, the errno behind it and the config path that caused it.

Raised once where the fault is found, printed once by the command line. The subclasses let a program using
pyoci as a library tell the kinds apart.
"""
from __future__ import annotations

import posix

# Linux's numbers for the errnos pyoci's own code names: the errno module costs each call that imports it
# 0.2 M instructions for a table of some 130.
EPERM, ENOENT, EACCES, EBUSY, EEXIST, EINVAL, EROFS = 1, 2, 13, 16, 17, 22, 30
ENAMETOOLONG, ENOSYS, ENOTEMPTY = 36, 38, 39


def one_line(text: str) -> str:
    """Control characters (a newline in a config key, say) escaped: an error is one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class PyociError(Exception):
    def __init__(self, msg: str, errno: int = 0, path: str = "") -> None:
        super().__init__(msg)
        self.msg = msg
        self.errno = errno
        self.path = path

    def __str__(self) -> str:
        text = self.msg
        if self.errno and posix.strerror(self.errno) not in text:
            text = f"{text}: {posix.strerror(self.errno)}"
        return one_line(f"{self.path}: {text}" if self.path else text)


class ConfigError(PyociError):
    """A config.json that the spec or the semantic rules refuse."""

    def __str__(self) -> str:
        where = f"config.json: {self.path}" if self.path else "config.json"
        return one_line(f"{where}: {self.msg}")


class NotFoundError(PyociError):
    """No container of that id under this root."""


class WrongStateError(PyociError):
    """The operation is not allowed in the container's current status (the lifecycle's transition table)."""

    def __init__(self, msg: str, status: str, operation: str) -> None:
        super().__init__(msg)
        self.status, self.operation = status, operation


class KernelError(PyociError):
    """The kernel refused a step (errno says why); path names the config item or the step it came from."""
