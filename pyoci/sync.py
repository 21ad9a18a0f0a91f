"""The runtime's side of the executor's sync protocol (csrc/shim.h draws it): spawn a plan and answer the
executor's messages until it is READY; pyoci.messages reads on until its execve.
"""
from __future__ import annotations

import posix

from .linux import unixsock
from .messages import Message, decode, raise_error, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from .cgroups import Cgroup
    from .create import Undo
    from .log import Logger
    from .plan import Plan


def receive(sock) -> tuple[Message | None, list[int]]:
    """One executor message (any length: its size is asked for first) and the fds it carries; None at EOF."""
    size = sock.recv_into(bytearray(1), 1, unixsock.MSG_PEEK | unixsock.MSG_TRUNC)
    data, fds = unixsock.recv_fds(sock, max(size, 1), 2)
    return (decode(data) if data else None), fds


class Handlers:
    """What the runtime does when the executor asks: write the id maps of the new user namespace (given
    the pid of the process that made it); run the hooks that run before pivot_root and give back the states
    the in-container hooks read (given the init's pid); hand a seccomp notify fd on."""

    def __init__(self, userns: Callable[[int], None] | None = None,
                 mounted: Callable[[int], tuple[int, int]] | None = None,
                 seccomp: Callable[[int, int], None] | None = None) -> None:
        self.userns, self.mounted, self.seccomp = userns, mounted, seccomp


def until_ready(plan: Plan, cgroup: Cgroup, handlers: Handlers, log: Logger, undo: Undo) -> tuple[int, object]:
    """Spawns the plan and drives it to READY: (the pid that will execve, the runtime's end of the sync
    socket, for `messages.until_exec`). undo learns every process to kill should this fail; the fds it holds
    are the executor's from the spawn on."""
    from .linux import shim

    for warning in plan.warnings:
        log.warning(warning)
    if log.debug_enabled:
        from .steps import op_name

        for i, step in enumerate(plan.steps):
            log.debug(f"plan[{i}]: {op_name(type(step))}: {step.what}")
    sock, child = unixsock.socketpair(unixsock.SOCK_SEQPACKET)
    try:
        try:
            first = shim.spawn(plan.steps, child.fileno())
        finally:
            child.close()
        undo.pids.append(first)
        log.debug(f"executor {first} spawned")
        undo.close_fds()
        pid = drive(sock, first, cgroup, handlers, log, undo.pids)
    except BaseException:
        sock.close()
        raise
    posix.waitpid(first, 0)
    undo.pids.remove(first)
    return pid, sock


def drive(sock, first: int, cgroup: Cgroup, handlers: Handlers, log: Logger, pids: list[int]) -> int:
    # The init's pid comes from the forking process, the init's own messages from the init: the two race, so
    # MOUNTED and a notify fd wait for the pid, and READY counts only once the pid is known.
    pid, mounted, ready, notify_fd = 0, False, False, -1
    try:
        while not (ready and pid):
            msg, fds = receive(sock)
            if msg is None or msg.kind == "ERROR":
                raise_error(msg, cgroup)
            log.debug(f"executor: {msg.kind} from plan[{msg.step}]{f' (pid {msg.pid})' if msg.kind == 'PID' else ''}")
            if msg.kind == "WARNING":
                warn(msg, log)
            elif msg.kind == "USERNS":
                handlers.userns(first)
                sock.send(b"\0")
            elif msg.kind == "PID":
                pid = msg.pid
                pids.append(pid)
            elif msg.kind == "MOUNTED":
                mounted = True
            elif msg.kind == "READY":
                ready = True
            elif msg.kind == "SECCOMP_FD" and fds:
                notify_fd = fds[0]
            if mounted and pid:
                states = handlers.mounted(pid)
                try:
                    unixsock.send_fds(sock, [b"\0"], list(states))
                finally:
                    for fd in states:
                        posix.close(fd)
                mounted = False
            if notify_fd >= 0 and pid:
                handlers.seccomp(pid, notify_fd)
                posix.close(notify_fd)
                notify_fd = -1
                sock.send(b"\0")
    finally:
        if notify_fd >= 0:
            posix.close(notify_fd)
    return pid
