"""Writing a value to a file in one write(2): a kernel file (cgroup, /proc) takes a value whole or refuses
it, and the --log file gets whole lines. OSError goes to the caller, which knows what the write was for.
Reading a file an image holds, which may be anything: only a regular file, and only so much of it."""
from __future__ import annotations

import posix
from _stat import S_ISREG


def write(path: str, data: str | bytes, flags: int = 0, mode: int = 0o644) -> None:
    fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC | flags, mode)
    try:
        posix.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        posix.close(fd)


def read_to_end(fd: int) -> bytes:
    """What is left to read from fd, up to its end."""
    data = b""
    while chunk := posix.read(fd, 65536):
        data += chunk
    return data


def read_bytes(path: str) -> bytes:
    """A file read whole through posix: `open` would load _io (~0.4 M instructions), which the pyoci
    command's core phase does without (pyoci/corephase.py)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        return read_to_end(fd)
    finally:
        posix.close(fd)


def read_text(path: str) -> str:
    """A file's text (UTF-8, as pyoci writes its own files and the kernel its), with no codec lookup."""
    return read_bytes(path).decode()


def read_regular(path_fd: int, limit: int) -> bytes | None:
    """What path_fd (an O_PATH fd) names, if it is a regular file of at most limit bytes; else None. It is
    opened for reading only once known to be a regular file (a FIFO would wait for a writer, a device can act
    on an open), through the O_PATH fd, which pins the inode. Closes path_fd."""
    try:
        if not S_ISREG(posix.fstat(path_fd).st_mode):
            return None
        fd = posix.open(f"/proc/self/fd/{path_fd}", posix.O_RDONLY | posix.O_NOCTTY | posix.O_CLOEXEC)
    finally:
        posix.close(path_fd)
    try:
        data = b""
        while len(data) <= limit and (chunk := posix.read(fd, limit + 1 - len(data))):
            data += chunk
    finally:
        posix.close(fd)
    return data if len(data) <= limit else None
