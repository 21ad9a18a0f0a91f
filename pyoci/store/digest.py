"""Content addresses: `sha256:<hex>` digests, overlay2 chain ids, and readers/writers that hash as they go."""
from __future__ import annotations

import hashlib
import re

from ..errors import PyociError

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def check(digest: str, what: str) -> str:
    """Only sha256 is accepted: a digest names a file under blobs/, so its form is checked before use."""
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise PyociError(f"{what}: not a sha256 digest: {digest!r}")
    return digest


def of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The image-spec ChainID of each layer: the identity of a layer together with everything below it,
    so one directory serves every image that shares the stack up to that layer."""
    chains: list[str] = []
    for d in diff_ids:
        chains.append(d if not chains else of(f"{chains[-1]} {d}".encode()))
    return chains


class HashingReader:
    """A file-like reader that hashes and counts every byte read through it."""

    def __init__(self, f, on_read=None) -> None:
        self.f = f
        self.hash = hashlib.sha256()
        self.size = 0
        self.on_read = on_read

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        self.size += len(data)
        if self.on_read:
            self.on_read(len(data))
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class HashingWriter:
    """A file-like writer that hashes and counts every byte written through it."""

    def __init__(self, f) -> None:
        self.f = f
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()
