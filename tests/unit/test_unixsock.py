"""pyoci.linux.unixsock passes fds as socket.send_fds/recv_fds do, and the two interwork."""
from __future__ import annotations

import os
import socket

from pyoci.linux import unixsock


def test_fds_travel_both_ways_with_the_stdlib(tmp_path):
    ours, theirs = unixsock.socketpair(unixsock.SOCK_SEQPACKET)
    std = socket.socket(fileno=theirs.detach())
    r, w = os.pipe()
    try:
        assert unixsock.send_fds(ours, [b"hello"], [r, w]) == 5
        data, fds, _, _ = socket.recv_fds(std, 100, 4)
        assert data == b"hello" and len(fds) == 2
        os.write(fds[1], b"x")
        assert os.read(r, 1) == b"x"
        socket.send_fds(std, [b"back"], [fds[0]])
        data, got = unixsock.recv_fds(ours, 100, 1)
        assert data == b"back" and len(got) == 1
        os.write(w, b"y")
        assert os.read(got[0], 1) == b"y"
        for fd in fds + got:
            os.close(fd)
        std.send(b"plain")
        assert unixsock.recv_fds(ours, 100, 1) == (b"plain", [])
    finally:
        os.close(r)
        os.close(w)
        ours.close()
        std.close()


def test_sockets_are_close_on_exec(tmp_path):
    a, b = unixsock.socketpair(unixsock.SOCK_STREAM)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "s"))
    server.listen(1)
    c = unixsock.connect(str(tmp_path / "s"))
    try:
        assert not any(os.get_inheritable(s.fileno()) for s in (a, b, c))
    finally:
        for s in (a, b, c, server):
            s.close()


def test_connect_refused_is_an_oserror(tmp_path):
    try:
        unixsock.connect(str(tmp_path / "none"))
    except OSError as exc:
        assert isinstance(exc, FileNotFoundError)
    else:
        raise AssertionError("connected to nothing")


def test_the_numbers_it_keeps_are_socket_modules():
    """unixsock names these itself, so that importing it does not set up _socket."""
    assert (unixsock.SOCK_STREAM, unixsock.SOCK_SEQPACKET) == (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)
    assert (unixsock.MSG_PEEK, unixsock.MSG_TRUNC) == (socket.MSG_PEEK, socket.MSG_TRUNC)


def test_connect_fd_is_a_close_on_exec_connection_even_through_a_long_path(tmp_path, monkeypatch):
    """The library's connect_fd (the pyoci command's own connect is driven by every `pyoci start`)."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monkeypatch.chdir(deep)  # bound by its short name
    server.bind("s")
    server.listen(1)
    fd = unixsock.connect_fd(str(deep / "s"), unixsock.SOCK_SEQPACKET)
    try:
        assert len(os.fsencode(str(deep / "s"))) > unixsock.SUN_PATH_MAX and not os.get_inheritable(fd)
        peer, _ = server.accept()
        os.write(fd, b"go")
        assert peer.recv(10) == b"go"
        peer.close()
    finally:
        os.close(fd)
        server.close()
