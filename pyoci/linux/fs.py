"""The few file-system questions the lifecycle's short commands ask (state, start, kill, delete, ps), on
`posix`, the C module under `os`: importing `os` (with `_collections_abc`, `posixpath`, `stat`) costs every
call some 5 M instructions, a quarter of what `pyoci state` does in all. The paths pyoci builds are absolute
and plain, so joining them is string work; what `os.path` would add (normalising, the cwd) is not needed."""
from __future__ import annotations

import posix
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
