"""The parent's side of the executor's sync protocol, driven by scripted messages (no kernel needed): the
forking process's pid message races the init's own messages."""
from __future__ import annotations

import socket

from pyoci.container import Undo, _drive
from pyoci.linux import shim


def message(kind: int, pid: int = 0) -> bytes:
    return shim.MESSAGE.pack(kind, 0, 0, pid, b"")


def drive(*messages: bytes):
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for m in messages:
        child.send(m)
    seen = []

    def mounted(pid: int) -> bytes:
        seen.append(pid)
        return b"state"

    try:
        pid = _drive(parent, 1, [], {}, Undo(state_dir=None), None, mounted)
        replies = []
        child.setblocking(False)
        try:
            while True:
                replies.append(child.recv(100))
        except BlockingIOError:
            pass
        return pid, seen, replies
    finally:
        parent.close()
        child.close()


def test_mounted_before_pid_waits_for_the_pid():
    pid, seen, replies = drive(message(shim.MSG_MOUNTED), message(shim.MSG_PID, 42), message(shim.MSG_READY))
    assert (pid, seen, replies) == (42, [42], [b"\0state"])


def test_ready_before_pid_still_returns_the_pid():
    pid, seen, replies = drive(message(shim.MSG_READY), message(shim.MSG_PID, 7))
    assert (pid, seen, replies) == (7, [], [])


def test_seccomp_fd_waits_for_the_pid_then_is_passed_on_and_answered():
    import os

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    socket.send_fds(child, [message(shim.MSG_SECCOMP_FD)], [r])
    os.close(r)
    child.send(message(shim.MSG_PID, 9))
    child.send(message(shim.MSG_READY))
    passed = []

    def on_seccomp(pid: int, fd: int) -> None:
        os.write(w, b"x")
        passed.append((pid, os.read(fd, 1)))

    try:
        assert _drive(parent, 1, [], {}, Undo(state_dir=None), None, None, on_seccomp) == 9
        assert passed == [(9, b"x")] and child.recv(100) == b"\0"
    finally:
        os.close(w)
        parent.close()
        child.close()
