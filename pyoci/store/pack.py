"""An overlay upper directory written back as an OCI layer tar: the reverse of unpack. A 0/0 character device
becomes `.wh.NAME`, an opaque directory gets a `.wh..wh..opq` entry, hard links inside the layer stay links,
and overlay's own xattrs stay behind.

A file the container wrote whose name an OCI layer reserves (`.wh.NAME`, `.wh..wh..opq`) would become a whiteout
or an opaque marker of the new layer: a process in a container could delete any file of the image its commit
makes. Such a layer is refused, naming those paths, instead of being written."""
from __future__ import annotations

import os
import stat
import tarfile

from ..errors import PyociError
from .unpack import OPAQUE, WHITEOUT, XATTR_PAX
from .view import is_opaque, is_whiteout


def walk(root: str, rel: str = ""):
    """(relative path, lstat) of everything under root, sorted, each directory before its contents."""
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        path = f"{rel}/{e.name}" if rel else e.name
        st = e.stat(follow_symlinks=False)
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(root, path)


def _xattrs(path: str) -> dict[str, str]:
    out = {}
    for name in os.listxattr(path, follow_symlinks=False):
        if not name.startswith("trusted.overlay."):
            value = os.getxattr(path, name, follow_symlinks=False)
            out[XATTR_PAX + name] = value.decode("utf-8", "surrogateescape")
    return out


def _marker(name: str, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime = 0o644, mtime
    return ti


def pack(diff: str, out) -> None:
    """Writes the layer tar of diff to out, a binary file-like object."""
    seen: dict[tuple[int, int], str] = {}
    reserved = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, st in walk(diff):
            path = os.path.join(diff, rel)
            parent, _, base = rel.rpartition("/")
            if is_whiteout(st):
                tar.addfile(_marker(f"{parent}/{WHITEOUT}{base}" if parent else WHITEOUT + base, int(st.st_mtime)))
                continue
            if base.startswith(WHITEOUT):
                reserved.append("/" + rel)
                continue
            if stat.S_ISSOCK(st.st_mode):
                continue  # a socket is a running program's, not the image's
            ti = tarfile.TarInfo(rel)
            ti.uid, ti.gid, ti.mode, ti.mtime = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), int(st.st_mtime)
            ti.pax_headers = _xattrs(path)
            data = None
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(st.st_mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen[key]
                else:
                    seen[key] = rel
                    ti.size = st.st_size
                    data = open(path, "rb")
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
            try:
                tar.addfile(ti, data)
            finally:
                if data:
                    data.close()
            if stat.S_ISDIR(st.st_mode) and is_opaque(path):
                tar.addfile(_marker(f"{rel}/{OPAQUE}", int(st.st_mtime)))
    if reserved:
        raise PyociError(f"the container layer holds names an OCI layer reserves for whiteouts ({WHITEOUT}*): "
                         f"{', '.join(reserved)}")
