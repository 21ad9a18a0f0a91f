"""Unix sockets on `_socket`, socket.py's C core: socket.py imports enum and selectors (several ms per call
here) for nothing pyoci uses. The socket objects are _socket.socket (close, fileno, detach, send, recv,
sendmsg, recvmsg, setblocking; close-on-exec as socket.py makes them), without the `with` support."""
from __future__ import annotations

import _socket
import sys

INT = 4  # SCM_RIGHTS carries fds as C ints (socket.py packs them with array, which imports collections.abc)

SOCK_STREAM = _socket.SOCK_STREAM
SOCK_SEQPACKET = _socket.SOCK_SEQPACKET


def socketpair(kind: int) -> tuple[_socket.socket, _socket.socket]:
    return _socket.socketpair(_socket.AF_UNIX, kind)


def connect(path: str) -> _socket.socket:
    """A stream connection to the unix socket at path (OSError if it cannot be made)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def send_fds(sock: _socket.socket, buffers: list[bytes], fds: list[int]) -> int:
    """socket.send_fds: the buffers in one message with the fds as SCM_RIGHTS."""
    rights = b"".join(fd.to_bytes(INT, sys.byteorder, signed=True) for fd in fds)
    return sock.sendmsg(buffers, [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])


def recv_fds(sock: _socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """socket.recv_fds's data and fds (its msg_flags and address are of no use here)."""
    fds = []
    data, ancdata, _, _ = sock.recvmsg(bufsize, _socket.CMSG_LEN(maxfds * INT))
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + INT], sys.byteorder, signed=True)
                    for i in range(0, len(payload) - INT + 1, INT)]
    return data, fds
