"""Unix sockets on `_socket`, socket.py's C core: socket.py imports enum and selectors (several ms per call
here) for nothing pyoci uses. The socket objects are _socket.socket (close, fileno, detach, send, recv,
sendmsg, recvmsg, setblocking; close-on-exec as socket.py makes them), without the `with` support."""
from __future__ import annotations

import _socket
import posix
import sys

from .fs import dirname, fsencode

INT = 4  # SCM_RIGHTS carries fds as C ints (socket.py packs them with array, which imports collections.abc)

SOCK_STREAM = _socket.SOCK_STREAM
SOCK_SEQPACKET = _socket.SOCK_SEQPACKET
MSG_PEEK, MSG_TRUNC = _socket.MSG_PEEK, _socket.MSG_TRUNC


def socketpair(kind: int) -> tuple[_socket.socket, _socket.socket]:
    return _socket.socketpair(_socket.AF_UNIX, kind)


# sockaddr_un's sun_path holds 108 bytes with the NUL; a longer path is reached through its directory's fd.
SUN_PATH_MAX = 107


def _at(path: str, kind: int, use) -> _socket.socket:
    """use(sock, address) on a new unix socket, the address shortened through /proc/self/fd when the path is
    too long for sun_path."""
    sock = _socket.socket(_socket.AF_UNIX, kind)
    parent = -1
    try:
        address = path
        if len(fsencode(path)) > SUN_PATH_MAX:
            parent = posix.open(dirname(path) or ".", posix.O_PATH | posix.O_CLOEXEC)
            address = f"/proc/self/fd/{parent}/{path.rpartition('/')[2]}"
            if len(fsencode(address)) > SUN_PATH_MAX:
                raise OSError(36, "the socket's name is too long", path)  # ENAMETOOLONG
        use(sock, address)
    except BaseException:
        sock.close()
        raise
    finally:
        if parent >= 0:
            posix.close(parent)
    return sock


def adopt(fd: int, kind: int = SOCK_STREAM) -> _socket.socket:
    """The socket object of a unix socket fd (closing it closes the fd)."""
    return _socket.socket(_socket.AF_UNIX, kind, 0, fd)


def connect(path: str, kind: int = SOCK_STREAM) -> _socket.socket:
    """A connection to the unix socket at path (OSError if it cannot be made)."""
    return _at(path, kind, lambda sock, address: sock.connect(address))


def listen(path: str, kind: int) -> _socket.socket:
    """A unix socket bound at path (made with mode 0600 whatever the umask) and listening."""
    def bind(sock: _socket.socket, address: str) -> None:
        posix.fchmod(sock.fileno(), 0o600)
        sock.bind(address)
        sock.listen(1)

    return _at(path, kind, bind)


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
