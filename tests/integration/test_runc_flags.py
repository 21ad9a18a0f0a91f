"""The flags runc 1.2+ has around runtime-spec 1.2/1.3 that pyoci takes too: --pidfd-socket on create, run and
exec (a pidfd of the container's process, as runc sends it), run --no-subreaper, update --l3-cache-schema and
--mem-bw-schema."""
from __future__ import annotations

import os
import socket

import pytest


@pytest.fixture
def pidfd_server(tmp_path):
    """A listening unix socket; receive() takes one connection's message: (data, the fd it carried)."""
    path = str(tmp_path / "pidfd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    server.settimeout(30)
    received = []

    def receive() -> tuple[bytes, int]:
        conn, _ = server.accept()
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, 64, 1)
        received.extend(fds)
        assert len(fds) == 1
        return data, fds[0]
    receive.path = path
    yield receive
    server.close()
    for fd in received:
        os.close(fd)


def pid_of(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        return int(next(line.split()[1] for line in f if line.startswith("Pid:")))


def test_create_and_exec_send_a_pidfd_of_their_process(pyoci, bundle, tmp_path, pidfd_server):
    cid = pyoci.new_id()
    pyoci("create", "--pidfd-socket", pidfd_server.path, "--bundle", str(bundle(["sleep", "1000"])), cid)
    data, fd = pidfd_server()
    assert data == b"standard" and pid_of(fd) == pyoci.state(cid)["pid"]
    pyoci("start", cid)
    pid_file = tmp_path / "exec.pid"
    pyoci("exec", "-d", "--pidfd-socket", pidfd_server.path, "--pid-file", str(pid_file), cid, "sleep", "100")
    data, fd = pidfd_server()
    assert data == b"setns" and pid_of(fd) == int(pid_file.read_text())


def test_run_takes_pidfd_socket_and_no_subreaper(pyoci, bundle, pidfd_server):
    cid = pyoci.new_id()
    pyoci("run", "-d", "--no-subreaper", "--pidfd-socket", pidfd_server.path, "--bundle",
          str(bundle(["sleep", "1000"])), cid)
    _, fd = pidfd_server()
    assert pid_of(fd) == pyoci.state(cid)["pid"]


def test_a_pidfd_socket_that_is_not_there_fails_in_one_line_and_leaves_nothing(pyoci, bundle, tmp_path):
    cid = pyoci.new_id()
    proc = pyoci("run", "-d", "--pidfd-socket", str(tmp_path / "none.sock"), "--bundle", str(bundle(["sleep", "9"])),
                 cid, check=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert f"--pidfd-socket {tmp_path / 'none.sock'}" in proc.stderr and not (pyoci.root / cid).exists()


def test_update_schemata_needs_the_containers_resctrl_group(pyoci, bundle):
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sleep", "1000"])), cid)
    proc = pyoci("update", "--l3-cache-schema", "L3:0=f", cid, check=False)
    assert proc.returncode == 1 and "the container has no linux.intelRdt" in proc.stderr
    proc = pyoci("update", "--mem-bw-schema", "L3:0=f", cid, check=False)
    assert proc.returncode == 1 and "--mem-bw-schema L3:0=f: must start with MB:" in proc.stderr
