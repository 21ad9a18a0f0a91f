"""`run` and `exec` in the foreground, as the pyoci command does them: the caller's terminal and signals go
to the container, its exit status comes back. (The Python API installs no signal handlers: this is the
command line's.)

The container's init is our child (the executor forks it with CLONE_PARENT), so we wait for it directly.
"""
from __future__ import annotations

import _signal  # signal.py's C core, int constants: signal.py itself imports enum
import gc
import posix
import select

from .errors import PyociError
from .linux import unixsock
from .state import exit_status, reap

TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Callable

    from .container import Runtime

# every signal with a name (as signal.Signals has them) but the three that cannot or must not go on
FORWARDED = sorted({getattr(_signal, name) for name in dir(_signal) if name.startswith("SIG") and not
                    name.startswith("SIG_")} - {_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD})


def _forward_signals(pid: int) -> Callable[[], None]:
    """Passes every catchable signal on to the container's init; returns the undo."""
    def forward(signum, _frame):
        try:
            posix.kill(pid, signum)
        except ProcessLookupError:
            pass

    old = {}
    for s in FORWARDED:
        try:
            old[s] = _signal.signal(s, forward)
        except (OSError, ValueError):
            pass
    return lambda: [_signal.signal(s, h) for s, h in old.items()]


def _relay(master: int, pid: int) -> int:
    """Copies our stdin to the pty and the pty to our stdout until the container exits."""
    import termios
    import tty

    saved = None
    if posix.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        try:
            import fcntl
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
        except OSError:
            pass
    inputs = [master, 0]
    try:
        while True:
            done, status = posix.waitpid(pid, posix.WNOHANG)
            if done:
                _drain(master)
                return exit_status(status)
            try:
                ready, _, _ = select.select(inputs, [], [], 0.1)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = posix.read(master, 65536)
                except OSError:
                    data = b""
                if data:
                    posix.write(1, data)
            if 0 in ready:
                data = posix.read(0, 65536)
                if data:
                    posix.write(master, data)
                else:
                    inputs.remove(0)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _drain(master: int) -> None:
    while select.select([master], [], [], 0)[0]:
        try:
            data = posix.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        posix.write(1, data)


def run(rt: Runtime, container_id: str, bundle: str, options: dict[str, object], detach: bool, keep: bool) -> int:
    """create and start; in the foreground, the container's exit status (and with process.terminal, its pty
    relayed to ours), the container deleted afterwards unless keep."""
    ours = None
    if not detach and not options.get("console_socket"):
        # Offer a console; create uses it only if process.terminal is set.
        ours = unixsock.socketpair(unixsock.SOCK_STREAM)
        options = {**options, "console_fd": ours[1].fileno()}
    try:
        c = rt.create(container_id, bundle, **options)
    finally:
        if ours:
            ours[1].close()
    master = -1
    if ours:
        try:
            # The executor sent the pty master before it reported ready, so it is here already if at all.
            ours[0].setblocking(False)
            _, fds = unixsock.recv_fds(ours[0], 256, 1)
            master = fds[0] if fds else -1
        except BlockingIOError:
            pass
        ours[0].close()
    if detach:
        c.start()
        return 0
    restore = _forward_signals(c.pid)
    try:
        c.start()
    except PyociError:
        restore()
        rt.delete(container_id, force=True)
        raise
    code = supervise(c.pid, master, restore)
    if not keep:
        rt.delete(container_id, force=True)
    return code


def collect_from_here() -> None:
    """Before a wait that may last for days: the garbage collector on again (the pyoci command starts without
    it, csrc/launcher.c) for what the wait allocates. What the call made so far is frozen first: it lives as
    long as the call, and the first collection would look at every object made since the start, all still in
    the youngest generation (~5% of a `run`'s CPU)."""
    gc.freeze()
    gc.enable()


def supervise(pid: int, master: int = -1, restore: Callable[[], None] | None = None) -> int:
    """Waits for our child pid (relaying its pty if master >= 0), forwarding signals; its exit status."""
    collect_from_here()
    restore = restore or _forward_signals(pid)
    try:
        return _relay(master, pid) if master >= 0 else reap(pid) or 0
    finally:
        restore()
