"""A layer tar unpacked into an overlay layer directory, with OCI whiteouts turned into overlay's own.

`.wh.NAME` becomes a 0/0 character device NAME and `.wh..wh..opq` the `trusted.overlay.opaque` xattr on its
directory. Every entry is created relative to an fd of its parent, reached without following symlinks, so a
layer cannot write outside its directory: `..`, absolute names, a parent that is a symlink and a hard link
to outside are refused, and the import with them.

A directory the tar implies without an entry for it (`root/.config/x` alone) takes the metadata of the same
directory in the layers below: created 0755 root, it would hide a lower `/root` 0700 in the merged view.
A whiteout deletes from the layers below only (image-spec): what this layer itself holds at that name stays,
and a directory of this layer that a whiteout names becomes opaque, which is what hides the lower one.
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile

from ..errors import PyociError
from .view import OPAQUE_XATTR, is_whiteout, visible

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
XATTR_PAX = "SCHILY.xattr."
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_name(name: str) -> list[str]:
    """A member name's components; refuses names that would leave the layer."""
    if name.startswith("/"):
        raise PyociError(f"{name!r}: absolute path in a layer")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PyociError(f"{name!r}: '..' in a layer path")
    return parts


def whiteout_target(base: str) -> str | None:
    """The name a `.wh.` entry deletes, or None if base is not a whiteout (opaque markers excluded)."""
    if base.startswith(WHITEOUT) and base != OPAQUE and not base.startswith(WHITEOUT + WHITEOUT):
        return base[len(WHITEOUT):]
    return None


class Unpacker:
    """Writes the members of one layer under root; tracks directory times, set last (children change them).
    lowers are the diff directories of the layers below, top first."""

    def __init__(self, root: str, lowers: list[str] | None = None) -> None:
        self.root_fd = os.open(root, DIR_FLAGS)
        self.lowers = lowers or []
        self.raw = None  # the tar's own stream, which sparse members are read from
        self.dir_times: list[tuple[list[str], int, int]] = []
        self._parent: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self._drop_parent()
        os.close(self.root_fd)

    def _drop_parent(self) -> None:
        if self._parent:
            os.close(self._parent[1])
            self._parent = None

    def parent(self, parts: list[str], create: bool = True) -> int:
        """An fd of the directory parts name, made if missing; a symlink or file on the way is refused."""
        key = tuple(parts)
        if self._parent and self._parent[0] == key:
            return self._parent[1]
        self._drop_parent()
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts):
                try:
                    nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise PyociError(f"{'/'.join(parts[:i + 1])}: no such directory in the layer") from None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                    self._like_below(nfd, parts[:i + 1])
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise PyociError(f"{'/'.join(parts[:i + 1])}: a parent in the layer is a symlink or "
                                         "not a directory") from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        self._parent = (key, fd)
        return fd

    def _like_below(self, fd: int, parts: list[str]) -> None:
        """An implied directory gets the owner, mode, xattrs and times of the directory the layers below show
        at its path; 0755 root (as made) where they show none."""
        below = visible(self.lowers, "/".join(parts))
        if below is None:
            return
        st = os.lstat(below)
        if not stat.S_ISDIR(st.st_mode):
            return
        os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        for name in os.listxattr(below, follow_symlinks=False):
            if not name.startswith("trusted.overlay."):
                os.setxattr(fd, name, os.getxattr(below, name, follow_symlinks=False))
        self.dir_times.append((list(parts), st.st_atime_ns, st.st_mtime_ns))

    def _clear(self, pfd: int, base: str, keep_dir: bool) -> bool:
        """Removes what base names in this layer (a later entry wins, as in tar) unless both it and the new
        entry are directories; says whether a directory was kept. Only the parent's fd is cached, and it is
        not under base, so it stays valid."""
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            _rmtree_at(pfd, base)
        else:
            os.unlink(base, dir_fd=pfd)
        return False

    def _whiteout(self, pfd: int, name: str, target: str) -> None:
        """Deletes target from the layers below: a whiteout device, unless this layer holds target itself
        (then it stays; a directory of it turns opaque so that nothing below shows through)."""
        if target in (".", "..") or "/" in target:
            raise PyociError(f"{name!r}: a whiteout of {target!r}, which names no entry")
        try:
            st = os.lstat(target, dir_fd=pfd)
        except FileNotFoundError:
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
            return
        if stat.S_ISDIR(st.st_mode):
            os.setxattr(f"/proc/self/fd/{pfd}/{target}", OPAQUE_XATTR, b"y", follow_symlinks=False)

    def add(self, member: tarfile.TarInfo, data) -> None:
        parts = split_name(member.name)
        if not parts:
            return  # the layer's root: its directory is ours
        *dirs, base = parts
        pfd = self.parent(dirs)
        if base == OPAQUE:
            os.setxattr(f"/proc/self/fd/{pfd}", OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            return  # AUFS's own bookkeeping (.wh..wh.plnk and friends): nothing a container sees
        target = whiteout_target(base)
        if target is not None:
            if not target:
                raise PyociError(f"{member.name!r}: a whiteout without a name")
            self._whiteout(pfd, member.name, target)
            return
        whited_out = self._is_whiteout(pfd, base)
        exists = self._clear(pfd, base, keep_dir=member.isdir())
        if member.isdir():
            if not exists:
                os.mkdir(base, 0o700, dir_fd=pfd)
                if whited_out:  # the lower directory was deleted: this one starts empty
                    os.setxattr(f"/proc/self/fd/{pfd}/{base}", OPAQUE_XATTR, b"y", follow_symlinks=False)
            self.dir_times.append((parts, _ns(member.mtime), _ns(member.mtime)))
        elif member.isreg():
            self._write_file(pfd, base, member, data)
            return
        elif member.issym():
            os.symlink(member.linkname, base, dir_fd=pfd)
        elif member.islnk():
            self._link(pfd, base, member)
            return  # a hard link shares its target's inode and metadata
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=pfd)
        elif member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            raise PyociError(f"{member.name!r}: unsupported tar entry type {member.type!r}")
        self._metadata(pfd, base, member)

    @staticmethod
    def _is_whiteout(pfd: int, base: str) -> bool:
        try:
            return is_whiteout(os.lstat(base, dir_fd=pfd))
        except FileNotFoundError:
            return False

    def _write_file(self, pfd: int, base: str, member: tarfile.TarInfo, data) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            if member.sparse is not None and self.raw is not None:
                self._write_sparse(fd, member)
            else:
                with open(fd, "wb", closefd=False, buffering=0) as out:
                    while chunk := data.read(1 << 20):
                        out.write(chunk)
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, stat.S_IMODE(member.mode))
            for name, value in _xattrs(member):
                os.setxattr(fd, name, value)
            os.utime(fd, ns=(_ns(member.mtime),) * 2)
        finally:
            os.close(fd)

    def _write_sparse(self, fd: int, member: tarfile.TarInfo) -> None:
        """A sparse member (GNU or PAX) keeps its holes: its data segments, stored one after the other, are
        written at their offsets and the file is sized with ftruncate, so a 4 GiB file of holes takes no disk."""
        self.raw.seek(member.offset_data)
        for offset, size in member.sparse:
            os.lseek(fd, offset, os.SEEK_SET)
            while size > 0:
                chunk = self.raw.read(min(size, 1 << 20))
                if not chunk:
                    raise PyociError(f"{member.name!r}: the layer ends inside this sparse file's data")
                os.write(fd, chunk)
                size -= len(chunk)
        os.ftruncate(fd, member.size)

    def _link(self, pfd: int, base: str, member: tarfile.TarInfo) -> None:
        tparts = split_name(member.linkname)
        if not tparts:
            raise PyociError(f"{member.name!r}: hard link to the layer's root")
        *tdirs, tbase = tparts
        dirs = split_name(member.name)[:-1]
        tfd = os.dup(self.parent(tdirs, create=False))
        try:
            pfd = self.parent(dirs)
            try:
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise PyociError(f"{member.name!r}: hard link to {member.linkname!r}, which the layer does not "
                                 "hold") from None
        finally:
            os.close(tfd)

    def _metadata(self, pfd: int, base: str, member: tarfile.TarInfo) -> None:
        os.chown(base, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
        if not member.issym():
            os.chmod(base, stat.S_IMODE(member.mode), dir_fd=pfd)
        for name, value in _xattrs(member):
            os.setxattr(f"/proc/self/fd/{pfd}/{base}", name, value, follow_symlinks=False)
        if not member.isdir():
            os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Directory times last, deepest first: creating children updated them."""
        for parts, atime, mtime in sorted(self.dir_times, key=lambda t: -len(t[0])):
            *dirs, base = parts
            try:
                pfd = self.parent(dirs, create=False)
                os.utime(base, ns=(atime, mtime), dir_fd=pfd, follow_symlinks=False)
            except (PyociError, FileNotFoundError):
                continue  # a later entry of the layer replaced or removed it


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)


def _xattrs(member: tarfile.TarInfo):
    for key, value in member.pax_headers.items():
        if key.startswith(XATTR_PAX):
            name = key[len(XATTR_PAX):]
            if name.startswith("trusted.overlay."):
                continue  # a layer must not forge overlay's own metadata (opaque, redirect, origin)
            yield name, value.encode("utf-8", "surrogateescape")


def _rmtree_at(pfd: int, base: str) -> None:
    fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _rmtree_at(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(base, dir_fd=pfd)


def unpack(stream, root: str, lowers: list[str] | None = None) -> None:
    """Unpacks the uncompressed layer tar read from stream into root (an empty directory); lowers are the
    diff directories of the layers below it, top first."""
    un = Unpacker(root, lowers)
    try:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tar:
            un.raw = tar.fileobj
            for member in tar:
                try:
                    un.add(member, tar.extractfile(member) if member.isreg() else None)
                except OSError as exc:
                    raise PyociError(f"{member.name!r}: {exc.strerror}", exc.errno) from None
        un.finish()
    except tarfile.TarError as exc:
        raise PyociError(f"not a valid layer tar: {exc}") from None
    finally:
        un.close()
