"""What a stack of overlay layer directories shows at a path, read without mounting it: the rules overlayfs
applies (a 0/0 character device hides the path below, an opaque directory hides everything below it)."""
from __future__ import annotations

import os
import stat

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def visible(diffs: list[str], rel: str) -> str | None:
    """The host path of what the merged view shows at rel (diffs top first), or None if nothing is there.
    Parents are not followed through symlinks: this answers for the tree as stored, not as resolved."""
    parts = [p for p in rel.split("/") if p]
    for diff in diffs:
        hidden_below = False
        for i in range(1, len(parts) + 1):
            path = os.path.join(diff, *parts[:i])
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                break
            if is_whiteout(st):
                return None
            if i == len(parts):
                return path
            if not stat.S_ISDIR(st.st_mode):
                return None  # a non-directory here hides a directory of that name below
            if is_opaque(path):
                hidden_below = True
        if hidden_below:
            return None
    return None


def read_file(diffs: list[str], rel: str) -> bytes | None:
    """The file the merged view shows at rel, if it is a regular file of at most IMAGE_FILE_LIMIT bytes; None
    for anything else (a symlink is not followed, a FIFO is never waited on, a huge file is not read)."""
    from ..defaults import IMAGE_FILE_LIMIT
    from ..linux.files import read_regular

    path = visible(diffs, rel)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    return read_regular(fd, IMAGE_FILE_LIMIT)
