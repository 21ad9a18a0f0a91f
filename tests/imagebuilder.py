"""Builds OCI images for the layer store's tests: layers from a directory or from a list of entries, written
as an OCI image layout, an OCI archive or a `docker save` archive, compressed with gzip, zstd or not at all."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dir_layer(root: Path) -> bytes:
    """A layer tar of everything under root (the base layer: busybox)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                tar.add(path, os.path.relpath(path, root), recursive=False)
    return buf.getvalue()


def entry(name: str, kind: str = "file", data: bytes = b"", mode: int | None = None, target: str = "",
          uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000, xattrs: dict[str, bytes] | None = None,
          dev: tuple[int, int] = (0, 0)) -> tuple[tarfile.TarInfo, bytes | None]:
    """One tar member: kind is file, dir, symlink, hardlink, char, block or fifo."""
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
               "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
               "fifo": tarfile.FIFOTYPE}[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid, ti.mtime, ti.linkname = uid, gid, mtime, target
    ti.devmajor, ti.devminor = dev
    ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in (xattrs or {}).items()}
    if kind == "file":
        ti.size = len(data)
        return ti, data
    return ti, None


def whiteout(path: str) -> tuple[tarfile.TarInfo, bytes]:
    parent, _, base = path.rpartition("/")
    return entry(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(f"{directory}/.wh..wh..opq")


def tar_layer(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(data: bytes, how: str | None) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data), "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def image_config(layers: list[bytes], **config) -> dict:
    return {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["sh"], **config},
            "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]}}


def write_oci(dest: Path, layers: list[bytes], config: dict | None = None, ref: str = "latest",
              how: str | None = "gzip") -> Path:
    """An OCI image layout at dest (added to its index if one is there)."""
    config = config or image_config(layers)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        d = sha(data)
        (blobs / d[7:]).write_bytes(data)
        return d

    descs = []
    for layer in layers:
        data, media = compress(layer, how)
        descs.append({"mediaType": media, "digest": put(data), "size": len(data)})
    cfg = json.dumps(config).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg),
                                      "size": len(cfg)}, "layers": descs}).encode()
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_path = dest / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
                               "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}})
    index_path.write_text(json.dumps(index))
    return dest


def write_oci_archive(dest: Path, layout: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        for item in ("oci-layout", "index.json", "blobs"):
            tar.add(layout / item, item)
    return dest


def write_docker_archive(dest: Path, layers: list[bytes], repo_tag: str, config: dict | None = None) -> Path:
    """What `docker save` wrote before Docker 25: manifest.json, <config>.json, <id>/layer.tar."""
    config = config or image_config(layers)
    cfg = json.dumps(config).encode()
    members = {f"{sha(cfg)[7:]}.json": cfg}
    paths = []
    for layer in layers:
        path = f"{sha(layer)[7:]}/layer.tar"
        members[path] = layer
        paths.append(path)
    members["manifest.json"] = json.dumps([{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": [repo_tag],
                                            "Layers": paths}]).encode()
    with tarfile.open(dest, "w") as tar:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return dest
