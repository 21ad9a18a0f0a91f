"""process.terminal: runc's console-socket protocol, consoleSize, and `run` relaying the pty itself."""
from __future__ import annotations

import os
import socket
import threading

import pytest

from conftest import TEMPLATES


def read_all(fd):
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the container side closes
            break
        if not chunk:
            break
        data += chunk
    return data.decode()


@pytest.mark.parametrize("template", TEMPLATES)
def test_console_socket_receives_pty_master(pyoci, bundle, tmp_path, template):
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got = {}

    def accept():
        conn, _ = server.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        got["name"], got["fd"] = msg.decode(), fds[0]
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    b = bundle(["sh", "-c", "tty; stty size; test -t 0 && echo stdin-tty"],
               lambda c: c["process"].update(terminal=True, consoleSize={"height": 30, "width": 100}))
    cid = pyoci.new_id()
    pyoci("create", "--console-socket", path, "--bundle", str(b), cid)
    t.join(timeout=10)
    server.close()
    assert got["name"].startswith("/dev/pts/")
    pyoci("start", cid)
    out = read_all(got["fd"])
    os.close(got["fd"])
    assert out.replace("\r", "").split("\n")[:3] == ["/dev/pts/0", "30 100", "stdin-tty"]


def test_console_socket_without_terminal_is_refused(pyoci, bundle, tmp_path):
    proc = pyoci("create", "--console-socket", str(tmp_path / "x.sock"), "--bundle", str(bundle(["true"])),
                 pyoci.new_id(), check=False)
    assert proc.returncode == 1 and "needs process.terminal" in proc.stderr


@pytest.mark.parametrize("template", TEMPLATES)
def test_run_in_foreground_relays_the_terminal(pyoci, bundle, template):
    b = bundle(["sh", "-c", "tty; exit 3"], lambda c: c["process"].update(terminal=True))
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False, stdin=open("/dev/null"))
    assert proc.returncode == 3
    assert proc.stdout.replace("\r", "").strip() == "/dev/pts/0"
