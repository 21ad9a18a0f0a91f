"""Progress for a person at a terminal: one line rewritten in place; nothing at all when stderr is not a tty."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label, self.done, self.total, self.last = "", 0, 0, 0.0

    def start(self, label: str, total: int | None) -> None:
        self.label, self.done, self.total = label, 0, total or 0
        self._show(force=True)

    def advance(self, n: int) -> None:
        self.done += n
        self._show()

    def finish(self, note: str = "") -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{self.label} {note or _mib(self.done)}\n")
            sys.stderr.flush()

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.1):
            return
        self.last = now
        total = f" / {_mib(self.total)}" if self.total else ""
        sys.stderr.write(f"\r\033[K{self.label} {_mib(self.done)}{total}")
        sys.stderr.flush()


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"
