"""The mount points of this process's mount namespace, from /proc/self/mountinfo."""
from __future__ import annotations

import os


def _path(field: bytes) -> str:
    """A mountinfo path with its octal escapes (\\040 for a space) decoded. The unicode_escape codec costs
    an import, so a field without a backslash is decoded as that codec would: byte for byte (latin-1)."""
    return field.decode("unicode_escape") if b"\\" in field else field.decode("latin-1")


def mount_points() -> list[str]:
    """Every mount point, in mount order."""
    with open("/proc/self/mountinfo", "rb") as f:
        return [_path(line.split(b" ")[4]) for line in f]


def mountpoint_of(path: str) -> str:
    """The mount point that holds path (longest prefix)."""
    best = "/"
    for mp in mount_points():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
            best = mp
    return best


def filesystem_of(path: str) -> str:
    """The filesystem type of the mount that holds path."""
    mp = mountpoint_of(os.path.realpath(path))
    fstype = ""
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, _, right = line.partition(b" - ")
            if _path(left.split(b" ")[4]) == mp:
                fstype = right.split(b" ")[0].decode()
    return fstype
