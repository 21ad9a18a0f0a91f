"""The mounts of this process's mount namespace, from /proc/self/mountinfo: the one parser of it."""
from __future__ import annotations

from .files import read_bytes
from .fs import realpath


def decode_path(field: bytes) -> str:
    """A mountinfo path with its octal escapes (\\040 for a space) decoded. The unicode_escape codec costs
    an import, so a field without a backslash is decoded as that codec would: byte for byte (latin-1)."""
    return field.decode("unicode_escape") if b"\\" in field else field.decode("latin-1")


def entries() -> list[tuple[str, str, str, str]]:
    """(root within its filesystem, mount point, filesystem type, super options) per mount, in mount order."""
    found = []
    for line in read_bytes("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(b" - ")
        fields = left.split(b" ")
        fstype, _, rest = right.partition(b" ")
        superopts = rest.split(b" ", 1)[-1].strip()
        found.append((decode_path(fields[3]), decode_path(fields[4]), fstype.decode(), superopts.decode()))
    return found


def mount_points() -> list[str]:
    """Every mount point, in mount order."""
    return [decode_path(line.split(b" ")[4]) for line in read_bytes("/proc/self/mountinfo").splitlines()]


def mountpoint_of(path: str) -> str:
    """The mount point that holds path (longest prefix)."""
    best = "/"
    for mp in mount_points():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
            best = mp
    return best


def filesystem_of(path: str) -> str:
    """The filesystem type of the mount that holds path (the topmost there)."""
    mp = mountpoint_of(realpath(path))
    return next((fstype for _, point, fstype, _ in reversed(entries()) if point == mp), "")


def mounts_at(path: str) -> int:
    """How many mounts are stacked on path."""
    return mount_points().count(path)


def unmount_above(counts: dict[str, int]) -> None:
    """Takes down what was mounted on each path since it held `counts[path]` mounts (a container without a
    mount namespace of its own made its rootfs bind on the host, an image's overlay too), lazily, with
    everything mounted under it; the mounts that were there before stay."""
    if not counts:
        return
    from .shim import umount_lazy

    for path, before in counts.items():
        while mounts_at(path) > before:
            umount_lazy(path)
