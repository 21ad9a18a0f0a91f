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
    path = visible(diffs, rel)
    if path is None or not os.path.isfile(path) or os.path.islink(path):
        return None
    with open(path, "rb") as f:
        return f.read()
