"""Where the store keeps things, in Docker overlay2's shape, and the two locks that make it safe to share.

    <root>/overlay2/<layer>/diff     a layer's files (an image layer's id is its chain id's hex)
    <root>/overlay2/<layer>/link     the layer's short name; <root>/overlay2/l/<short> -> ../<layer>/diff
    <root>/overlay2/<layer>/lower    the layers below, top first, as l/<short>:l/<short>...
    <root>/overlay2/<layer>/work     overlay's scratch dir (container layers only), and merged, the mount point
    <root>/blobs/sha256/<hex>        manifests, configs and layer blobs as imported (export copies them)
    <root>/store.json                images (manifest, config, layers, tags) and bundles (container layers)

Imports hold the store lock shared, so several run at once; removal and garbage collection hold it
exclusive, so they never take a layer an import is about to record. store.json changes under its own lock.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager

from .. import jsonio
from ..errors import PyociError

DEFAULT_ROOT = "/var/lib/pyoci"


def short_id(layer_id: str) -> str:
    """26 characters, as Docker's links: short enough that 128 of them fit one page of mount data."""
    return base64.b32encode(hashlib.sha256(layer_id.encode()).digest())[:26].decode()


class Layout:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)
        self.overlay = os.path.join(self.root, "overlay2")
        self.links = os.path.join(self.overlay, "l")
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        self.tmp = os.path.join(self.root, "tmp")
        self.records = os.path.join(self.root, "store.json")

    def ensure(self) -> None:
        for d in (self.root, self.overlay, self.links, self.blobs, self.tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)

    def layer(self, layer_id: str, *parts: str) -> str:
        return os.path.join(self.overlay, layer_id, *parts)

    def blob(self, digest: str) -> str:
        return os.path.join(self.blobs, digest.split(":", 1)[1])

    def has_layer(self, layer_id: str) -> bool:
        return os.path.isdir(self.layer(layer_id, "diff"))

    def staging(self, prefix: str) -> str:
        return tempfile.mkdtemp(prefix=prefix, dir=self.tmp)

    @contextmanager
    def _flock(self, name: str, exclusive: bool):
        self.ensure()
        fd = os.open(os.path.join(self.root, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def lock(self, exclusive: bool):
        return self._flock(".lock", exclusive)

    def load(self) -> dict:
        try:
            with open(self.records) as f:
                data = jsonio.load(f)
        except FileNotFoundError:
            data = {}
        except ValueError as exc:
            raise PyociError(f"{self.records}: corrupt: {exc}") from None
        data.setdefault("images", {})
        data.setdefault("bundles", {})
        return data

    @contextmanager
    def records_for_update(self):
        """Yields store.json's data for changing; written back atomically when the block ends cleanly."""
        with self._flock(".records.lock", exclusive=True):
            data = self.load()
            yield data
            tmp = f"{self.records}.{os.getpid()}"
            with open(tmp, "w") as f:
                jsonio.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.records)
