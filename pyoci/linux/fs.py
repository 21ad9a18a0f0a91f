"""Paths, file-system questions and the environment, on `posix`, the C module under `os`: importing `os` (with
`_collections_abc`, `posixpath`, `stat`) costs every call some 5 M instructions, a quarter of what `pyoci
state` does in all, and `create`, `run` and `exec` pay it too. The paths pyoci handles are the ones of POSIX
(no drive, `/` the only separator), so the `os.path` functions it needs are a few lines of string work here.
"""
from __future__ import annotations

import posix
import sys
from _stat import S_ISDIR


def exists(path: str) -> bool:
    try:
        posix.stat(path)
    except OSError:
        return False
    return True


def isdir(path: str) -> bool:
    try:
        return S_ISDIR(posix.stat(path).st_mode)
    except OSError:
        return False


def samefile(a: str, b: str) -> bool:
    sa, sb = posix.stat(a), posix.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def subdirs(top: str) -> list[str]:
    """top and every directory below it, parents before their children (no symlink followed)."""
    found, pending = [], [top]
    while pending:
        d = pending.pop()
        found.append(d)
        try:
            entries = posix.scandir(d)
        except OSError:
            continue
        with entries:
            pending += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    return found


def makedirs(path: str, mode: int) -> None:
    """os.makedirs(path, mode, exist_ok=True) of an absolute path."""
    parts = normpath(path).split("/")[1:]
    for i in range(1, len(parts) + 1):
        try:
            posix.mkdir("/" + "/".join(parts[:i]), mode)
        except FileExistsError:
            pass


def join(base: str, path: str) -> str:
    """os.path.join of two: path itself if it is absolute."""
    if path.startswith("/") or not base:
        return path
    return base + path if base.endswith("/") else f"{base}/{path}"


def dirname(path: str) -> str:
    head = path[:path.rfind("/") + 1]
    return head.rstrip("/") or head[:1]


def normpath(path: str) -> str:
    """os.path.normpath: no empty or `.` components, each `..` takes one back (never above `/`). Unlike
    posixpath, a leading `//` becomes `/`, as the kernel reads it."""
    absolute = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not absolute:
            parts.append(part)
    return ("/" if absolute else "") + "/".join(parts) or "."


def abspath(path: str) -> str:
    return normpath(join(posix.getcwd(), path))


def relpath(path: str, start: str) -> str:
    """os.path.relpath of two absolute paths."""
    to, at = normpath(path).split("/")[1:], normpath(start).split("/")[1:]
    to, at = [p for p in to if p], [p for p in at if p]
    common = 0
    while common < min(len(to), len(at)) and to[common] == at[common]:
        common += 1
    return "/".join([".."] * (len(at) - common) + to[common:]) or "."


def realpath(path: str) -> str:
    """The absolute path with every symlink resolved, as the kernel resolves it: the link of an O_PATH fd of
    it in /proc/self/fd. A path that cannot be opened (not there yet) keeps its last components as written
    after the longest part that can (`..` after a symlink is the link target's parent, as for the kernel)."""
    path = join(posix.getcwd(), path)
    try:
        fd = posix.open(path, posix.O_PATH | posix.O_CLOEXEC)
    except OSError:
        parent, _, name = path.rstrip("/").rpartition("/")
        return normpath(join(realpath(parent or "/"), name))
    try:
        return posix.readlink(f"/proc/self/fd/{fd}")
    finally:
        posix.close(fd)


_FS_ENCODING = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # fixed at start-up


def fsencode(path: str) -> bytes:
    """os.fsencode of a str."""
    return path.encode(*_FS_ENCODING)


def getenv(name: str) -> str | None:
    """A variable of the environment: os.environ's where the program has imported os (a library user may have
    set it through os.environ since start-up), else posix.environ's, the start-up copy, which is the same
    thing for the command, which does not import os."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name)
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(errors="surrogateescape")
