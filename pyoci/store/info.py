"""What the store stands on, in `docker info`'s terms, and the preconditions overlay needs: the kernel knows
overlay, and the backing filesystem fills d_type (xfs made without ftype=1 does not, and overlay on it would
show whiteouts as files)."""
from __future__ import annotations

import os

from ..errors import PyociError
from .layout import Layout

BACKING = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs"}


def _param(name: str) -> bool:
    try:
        with open(f"/sys/module/overlay/parameters/{name}") as f:
            return f.read().strip() in ("Y", "on", "1")
    except OSError:
        return False


def overlay_supported() -> bool:
    with open("/proc/filesystems") as f:
        return any(line.split()[-1:] == ["overlay"] for line in f)


def backing_filesystem(path: str) -> str:
    from ..linux.mountinfo import filesystem_of

    fstype = filesystem_of(path)
    return BACKING.get(fstype, fstype)


def require_overlay(layout: Layout) -> None:
    from ..linux.shim import supports_dtype

    if os.geteuid() != 0:
        raise PyociError("the layer store needs root: it writes files of any owner and mounts overlay")
    if not overlay_supported():
        raise PyociError("the kernel has no overlay filesystem (modprobe overlay): the layer store needs it")
    layout.ensure()
    if not supports_dtype(layout.root):
        raise PyociError(f"the store at {layout.root} is on {backing_filesystem(layout.root)} without d_type "
                         "support (xfs needs ftype=1): overlay cannot work there; use --store on another "
                         "filesystem")


def disk_usage(path: str) -> int:
    """Bytes allocated under path, each inode once (hard links, and whiteouts, take no data blocks)."""
    seen, total = set(), 0
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(top, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def store_info(layout: Layout) -> dict:
    from ..linux.shim import supports_dtype

    rec = layout.load()
    exists = os.path.isdir(layout.root)
    return {
        "Storage Driver": "overlay2",
        "Root Dir": layout.root,
        "Backing Filesystem": backing_filesystem(layout.root if exists else os.path.dirname(layout.root)),
        "Supports d_type": supports_dtype(layout.root if exists else os.path.dirname(layout.root)),
        "Overlay Supported": overlay_supported(),
        "Native Overlay Diff": not _param("redirect_dir") and not _param("metacopy"),
        "Using metacopy": False,
        "Kernel metacopy default": _param("metacopy"),
        "userxattr": os.geteuid() != 0,
        "Images": len(rec["images"]),
        "Layers": len([n for n in os.listdir(layout.overlay) if n != "l"]) if os.path.isdir(layout.overlay) else 0,
        "Bundles": len(rec["bundles"]),
        "Disk Used": disk_usage(layout.root) if exists else 0,
    }
