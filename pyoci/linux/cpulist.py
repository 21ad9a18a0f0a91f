"""The kernel's list format for CPUs and NUMA nodes ("0-3,7"), as process.execCPUAffinity and
linux.memoryPolicy.nodes write it, and the bitmasks sched_setaffinity(2) and set_mempolicy(2) take.

Parsed as runc parses it (spaces around elements and empty elements are allowed; ids above MAX_ID are
refused, so a typo cannot make the runtime build a huge mask).
"""
from __future__ import annotations

MAX_ID = 64 * 1024


def parse(text: str) -> list[int]:
    """The ids of a list, sorted; ValueError says what is wrong with it."""
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        start, end = _id(first, part), _id(last, part) if dash else None
        if end is None:
            end = start
        if start > end:
            raise ValueError(f"invalid range {part!r}")
        ids.update(range(start, end + 1))
    if not ids:
        raise ValueError(f"no ids in {text!r}")
    return sorted(ids)


def _id(text: str, part: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{part!r} is not a number or a range of numbers")
    value = int(text)
    if value > MAX_ID:
        raise ValueError(f"{value} is above {MAX_ID}")
    return value


def mask(ids: list[int]) -> list[int]:
    """The ids as a bitmask in 64-bit words (word 0 holds ids 0..63), as the kernel's cpumask and nodemask."""
    words = [0] * (max(ids) // 64 + 1 if ids else 0)
    for i in ids:
        words[i // 64] |= 1 << (i % 64)
    return words


def text(ids: list[int]) -> str:
    """The ids in the kernel's own format ("0-3,7"), as /proc and sysfs print lists."""
    ranges: list[list[int]] = []
    for i in sorted(ids):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
