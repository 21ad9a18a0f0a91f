"""Writing a value to a file in one write(2): a kernel file (cgroup, /proc) takes a value whole or refuses
it, and the --log file gets whole lines. OSError goes to the caller, which knows what the write was for."""
from __future__ import annotations

import os


def write(path: str, data: str | bytes, flags: int = 0, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | flags, mode)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
