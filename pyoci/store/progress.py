"""Progress for a person at a terminal: one line per layer in flight, rewritten in place (a pull fetches
several at once), and a last line per layer when it is done; nothing at all when stderr is not a tty."""
from __future__ import annotations

import sys
import threading
import time


class Bar:
    """One layer's line. advance() may be called from the thread that fetches the layer."""

    def __init__(self, owner: "Progress", label: str, total: int | None) -> None:
        self.owner, self.label, self.total, self.done = owner, label, total or 0, 0

    def advance(self, n: int) -> None:
        self.done += n
        self.owner.redraw()

    def finish(self, note: str = "") -> None:
        self.owner.finished(self, note or human_size(self.done))

    def text(self) -> str:
        total = f" / {human_size(self.total)}" if self.total else ""
        return f"{self.label} {human_size(self.done)}{total}"


class Progress:
    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.active: list[Bar] = []
        self.drawn = 0  # lines of active bars below the cursor's line start
        self.last = 0.0
        self.lock = threading.Lock()

    def bar(self, label: str, total: int | None) -> Bar:
        bar = Bar(self, label, total)
        with self.lock:
            self.active.append(bar)
        self.redraw(force=True)
        return bar

    def redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.1):
            return
        with self.lock:
            self.last = now
            self._draw([])

    def finished(self, bar: Bar, note: str) -> None:
        with self.lock:
            if bar in self.active:
                self.active.remove(bar)
            if self.enabled:
                self._draw([f"{bar.label} {note}"])

    def _draw(self, done: list[str]) -> None:
        """Lines of finished bars first (they stay), then every active bar; the lock is held."""
        out = [f"\033[{self.drawn}F" if self.drawn else "\r"]
        out += [f"\033[K{line}\n" for line in done + [b.text() for b in self.active]]
        out.append("\033[J")
        self.drawn = len(self.active)
        sys.stderr.write("".join(out))
        sys.stderr.flush()


def human_size(n: int) -> str:
    """A byte count as the store shows one everywhere: MiB, or GiB from one on."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
