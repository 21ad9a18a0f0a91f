"""The runtime's side of the executor's sync protocol, driven by scripted messages (no kernel needed): the
forking process's pid message races the init's own messages; messages of any length arrive whole."""
from __future__ import annotations

import os
import socket

import pytest

from pyoci import messages, sync
from pyoci._shim import ffi, lib
from pyoci.errors import PyociError
from pyoci.log import Logger


def message(kind: str, pid: int = 0, err: int = 0, detail: str = "") -> bytes:
    """An executor message laid out by the header's struct pyoci_msg."""
    text = detail.encode()
    head = ffi.new("struct pyoci_msg *", {"type": getattr(lib, f"PYOCI_MSG_{kind}"), "step": 0, "err": err, "pid": pid, "len": len(text)})
    return bytes(ffi.buffer(head)) + text


def test_the_generated_protocol_numbers_are_the_compiled_headers():
    """pyoci._protocol (setup.py writes it from shim.h for pyoci.messages, which reads messages without cffi) holds
    what the compiled extension has."""
    from pyoci import _protocol

    assert _protocol.MSG_KINDS == {name[len("PYOCI_MSG_"):]: getattr(lib, name) for name in dir(lib)
                                   if name.startswith("PYOCI_MSG_")}
    assert _protocol.MSG_HEADER == ffi.sizeof("struct pyoci_msg")
    assert _protocol.MSG_FIELDS == {name: ffi.offsetof("struct pyoci_msg", name)
                                    for name in ("type", "step", "err", "pid", "len")}


class Script:
    """A socketpair whose executor end has the scripted messages queued."""

    def __init__(self, *messages: bytes) -> None:
        self.runtime, self.executor = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for m in messages:
            self.executor.send(m)
        self.seen: list[int] = []
        self.pids: list[int] = []

    def mounted(self, pid: int) -> tuple[int, int]:
        self.seen.append(pid)
        return os.pipe()

    def drive(self, **handlers) -> int:
        return sync.drive(self.runtime, 1, None, sync.Handlers(mounted=self.mounted, **handlers), Logger(), self.pids)

    def replies(self) -> list[tuple[bytes, int]]:
        self.executor.setblocking(False)
        got = []
        try:
            while True:
                data, fds, _, _ = socket.recv_fds(self.executor, 100, 2)
                got.append((data, len(fds)))
                for fd in fds:
                    os.close(fd)
        except BlockingIOError:
            return got

    def close(self) -> None:
        self.runtime.close()
        self.executor.close()


@pytest.fixture
def script():
    made = []

    def make(*messages: bytes) -> Script:
        made.append(Script(*messages))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_mounted_before_pid_waits_for_the_pid(script):
    s = script(message("MOUNTED"), message("PID", 42), message("READY"))
    assert s.drive() == 42
    assert s.seen == [42] and s.pids == [42] and s.replies() == [(b"\0", 2)]  # the go-ahead carries both states


def test_ready_before_pid_still_returns_the_pid(script):
    s = script(message("READY"), message("PID", 7))
    assert s.drive() == 7 and s.seen == [] and s.replies() == []


def test_seccomp_fd_waits_for_the_pid_then_is_passed_on_and_answered(script):
    s = script()
    r, w = os.pipe()
    socket.send_fds(s.executor, [message("SECCOMP_FD")], [r])
    os.close(r)
    s.executor.send(message("PID", 9))
    s.executor.send(message("READY"))
    passed = []

    def on_seccomp(pid: int, fd: int) -> None:
        os.write(w, b"x")
        passed.append((pid, os.read(fd, 1)))

    try:
        assert s.drive(seccomp=on_seccomp) == 9
        assert passed == [(9, b"x")] and s.replies() == [(b"\0", 0)]
    finally:
        os.close(w)


def test_an_error_of_any_length_arrives_whole(script):
    detail = "process.args: exec: \"/" + "x" * 300 + "\": executable file not found in $PATH"
    s = script(message("PID", 5), message("ERROR", err=2, detail=detail))
    with pytest.raises(PyociError) as caught:
        s.drive()
    assert str(caught.value) == f"{detail}: No such file or directory"


def test_a_warning_is_logged_and_the_protocol_goes_on(script, capsys):
    s = script(message("WARNING", err=38, detail="session keyring: no keyrings"), message("PID", 3),
               message("READY"))
    assert s.drive() == 3
    assert capsys.readouterr().err == "pyoci: warning: session keyring: no keyrings: Function not implemented\n"


def test_eof_without_ready_is_the_executor_dying(script):
    s = script(message("PID", 4))
    s.executor.close()
    with pytest.raises(PyociError, match="the container process exited before it was ready"):
        s.drive()


def test_until_exec_ends_at_the_execve_and_logs_warnings(script, capsys):
    s = script(message("WARNING", err=1, detail="oom_score_adj: kept"))
    s.executor.close()
    messages.until_exec(s.runtime.fileno(), Logger())
    assert capsys.readouterr().err == "pyoci: warning: oom_score_adj: kept: Operation not permitted\n"


def test_until_exec_raises_an_error_and_drops_any_fds_sent_with_a_message(script):
    s = script()
    r, w = os.pipe()
    socket.send_fds(s.executor, [message("WARNING", detail="x")], [r])
    os.close(r)
    s.executor.send(message("ERROR", err=2, detail="process.args: exec: /nope"))
    before = sorted(os.listdir("/proc/self/fd"))
    try:
        with pytest.raises(PyociError, match="^process.args: exec: /nope: No such file or directory$"):
            messages.until_exec(s.runtime.fileno(), Logger())
        assert sorted(os.listdir("/proc/self/fd")) == before
        with pytest.raises(BrokenPipeError):  # the kernel closed the read end the message carried
            os.write(w, b"x")
    finally:
        os.close(w)


def test_until_exec_reads_a_long_error_whole_up_to_its_bound(script):
    detail = "y" * messages.LONGEST_DETAIL
    s = script(message("ERROR", detail=detail + "cut"))
    with pytest.raises(PyociError) as caught:
        messages.until_exec(s.runtime.fileno(), Logger())
    assert str(caught.value) == detail
