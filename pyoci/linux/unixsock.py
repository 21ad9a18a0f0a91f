"""Unix sockets on `_socket`, socket.py's C core: socket.py imports enum and selectors (several ms per call
here) for nothing pyoci uses. The socket objects are _socket.socket (close, fileno, detach, send, recv,
sendmsg, recvmsg, setblocking; close-on-exec as socket.py makes them), without the `with` support.
`_socket` itself is imported where a socket object is made: `start` connects without one (connect_fd)."""
from __future__ import annotations

import posix
import sys

from ..errors import ENAMETOOLONG
from .fs import dirname, fsencode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, TypeVar

    import _socket

    T = TypeVar("T")

INT = 4  # SCM_RIGHTS carries fds as C ints (socket.py packs them with array, which imports collections.abc)

SOCK_STREAM, SOCK_SEQPACKET = 1, 5  # Linux's numbers, as _socket has them
MSG_PEEK, MSG_TRUNC = 0x2, 0x20


def socketpair(kind: int) -> tuple[_socket.socket, _socket.socket]:
    import _socket

    return _socket.socketpair(_socket.AF_UNIX, kind)


# sockaddr_un's sun_path holds 108 bytes with the NUL; a longer path is reached through its directory's fd.
SUN_PATH_MAX = 107


def _at(path: str, use: Callable[[str], T]) -> T:
    """use(address): path's address, shortened through /proc/self/fd when it is too long for sun_path."""
    parent = -1
    try:
        address = path
        if len(fsencode(path)) > SUN_PATH_MAX:
            parent = posix.open(dirname(path) or ".", posix.O_PATH | posix.O_CLOEXEC)
            address = f"/proc/self/fd/{parent}/{path.rpartition('/')[2]}"
            if len(fsencode(address)) > SUN_PATH_MAX:
                raise OSError(ENAMETOOLONG, "the socket's name is too long", path)
        return use(address)
    finally:
        if parent >= 0:
            posix.close(parent)


def _socket_at(path: str, kind: int, use: Callable[[_socket.socket, str], None]) -> _socket.socket:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, kind)
    try:
        _at(path, lambda address: use(sock, address))
    except BaseException:
        sock.close()
        raise
    return sock


def adopt(fd: int, kind: int = SOCK_STREAM) -> _socket.socket:
    """The socket object of a unix socket fd (closing it closes the fd)."""
    import _socket

    return _socket.socket(_socket.AF_UNIX, kind, 0, fd)


def connect(path: str, kind: int = SOCK_STREAM) -> _socket.socket:
    """A connection to the unix socket at path (OSError if it cannot be made)."""
    return _socket_at(path, kind, lambda sock, address: sock.connect(address))


def connect_fd(path: str, kind: int) -> int:
    """connect's socket as a bare fd (close-on-exec), for a caller that needs only posix's read and write on
    it. The pyoci command connects it itself, so that `start` never sets up `_socket`; the library, in any
    Python, goes through `_socket`."""
    try:
        from _pyoci_launcher import connect as connect_unix
    except ImportError:
        return connect(path, kind).detach()
    return _at(path, lambda address: connect_unix(fsencode(address), kind))


def listen(path: str, kind: int) -> _socket.socket:
    """A unix socket bound at path (made with mode 0600 whatever the umask) and listening."""
    def bind(sock: _socket.socket, address: str) -> None:
        posix.fchmod(sock.fileno(), 0o600)
        sock.bind(address)
        sock.listen(1)

    return _socket_at(path, kind, bind)


def send_fds(sock: _socket.socket, buffers: list[bytes], fds: list[int]) -> int:
    """socket.send_fds: the buffers in one message with the fds as SCM_RIGHTS."""
    import _socket

    rights = b"".join(fd.to_bytes(INT, sys.byteorder, signed=True) for fd in fds)
    return sock.sendmsg(buffers, [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])


def recv_fds(sock: _socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """socket.recv_fds's data and fds (its msg_flags and address are of no use here)."""
    import _socket

    fds = []
    data, ancdata, _, _ = sock.recvmsg(bufsize, _socket.CMSG_LEN(maxfds * INT))
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + INT], sys.byteorder, signed=True)
                    for i in range(0, len(payload) - INT + 1, INT)]
    return data, fds
