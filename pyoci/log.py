"""runc-compatible error reporting: one line on stderr, and the same line in the --log file; with --debug, a
line for each step of the work, in the log file (on stderr without one), as runc's level=debug lines.

containerd's shim and podman read the last JSON line of the log file to show the user why a call failed.
"""
from __future__ import annotations

import posix
import sys
import time

from . import jsonio
from .errors import one_line
from .linux.files import write


class Logger:
    """Errors and warnings to stderr and the --log file. `context` ("create c1") prefixes what the lifecycle
    reports on its own (warnings), as the command line prefixes its errors."""

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug
        self.context = ""

    def open(self) -> None:
        """Makes the log file as runc does on every call, whatever happens later (an engine may wait for it);
        one that cannot be made (a missing directory) fails the call."""
        if self.path:
            try:
                write(self.path, "", posix.O_APPEND | posix.O_CREAT)
            except OSError as exc:
                from .errors import PyociError

                raise PyociError(f"--log {self.path}", exc.errno) from None

    def _write(self, level: str, msg: str) -> None:
        if not self.path:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        if self.fmt == "json":
            line = jsonio.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f'time="{now}" level={level} msg={jsonio.dumps(msg)}'
        try:
            write(self.path, line + "\n", posix.O_APPEND | posix.O_CREAT)
        except OSError:
            pass

    def error(self, msg: str) -> None:
        msg = one_line(msg)  # whatever it quotes (an id with a newline in it, say)
        self._write("error", msg)
        _to_stderr(msg)

    def _line(self, level: str, msg: str) -> str:
        return one_line(f"pyoci: {self.context}: {level}: {msg}" if self.context else f"pyoci: {level}: {msg}")

    def warning(self, msg: str) -> None:
        line = self._line("warning", msg)
        self._write("warning", line)
        _to_stderr(line)

    def debug(self, msg: str) -> None:
        """A step of the work, with --debug: into the log file, or onto stderr without one (runc's)."""
        if self.debug_enabled:
            if self.path:
                self._write("debug", msg)
            else:
                _to_stderr(self._line("debug", msg))


def _to_stderr(line: str) -> None:
    """A line on stderr, if the process has one: started with fd 2 closed, CPython sets sys.stderr to None."""
    if sys.stderr is not None:
        sys.stderr.write(line + "\n")
