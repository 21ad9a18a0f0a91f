"""Images to import: an OCI image layout directory, an OCI archive (a tar of one), or a `docker save` archive.

Each is read through a small file reader (directory or tar) and turned into one SourceImage: the manifest's
layer descriptors, the config bytes, tags, and a way to open each layer blob. Digests are verified by the
importer as it reads, never trusted.
"""
from __future__ import annotations

import json
import os
import platform
import tarfile

from ..errors import PyociError
from ..record import field, record
from . import digest

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
        "riscv64": "riscv64"}.get(platform.machine(), platform.machine())


@record
class Blob:
    """A layer blob: its digest if the source names one (a docker archive does not), and how to open it."""
    path: str
    digest: str | None
    media_type: str
    size: int | None = None


@record
class SourceImage:
    """manifest is the source's own manifest bytes, kept so an export gives back the same image; a docker
    archive has none and gets one made for it."""
    config: bytes
    config_digest: str | None
    layers: list[Blob]
    manifest: bytes | None = None
    tags: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)


class DirReader:
    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, rel: str) -> str:
        if rel.startswith("/") or ".." in rel.split("/"):
            raise PyociError(f"{rel!r}: a path outside the image")
        return os.path.join(self.root, rel)

    def exists(self, rel: str) -> bool:
        return os.path.isfile(self.path(rel))

    def open(self, rel: str):
        try:
            return open(self.path(rel), "rb")
        except OSError as exc:
            raise PyociError(f"{rel}: {exc.strerror}", exc.errno) from None

    def close(self) -> None:
        pass


class TarReader:
    def __init__(self, path: str) -> None:
        try:
            self.tar = tarfile.open(path, "r:*")
        except (OSError, tarfile.TarError) as exc:
            raise PyociError(f"{path}: not a readable tar archive: {exc}") from None
        self.members = {m.name.removeprefix("./"): m
                        for m in self.tar.getmembers() if m.isfile()}

    def exists(self, rel: str) -> bool:
        return rel in self.members

    def open(self, rel: str):
        if rel not in self.members:
            raise PyociError(f"{rel}: not in the archive")
        return self.tar.extractfile(self.members[rel])

    def close(self) -> None:
        self.tar.close()


def _json(reader, rel: str) -> tuple[bytes, dict]:
    with reader.open(rel) as f:
        data = f.read()
    try:
        return data, json.loads(data)
    except ValueError as exc:
        raise PyociError(f"{rel}: not JSON: {exc}") from None


def _blob_path(d: str) -> str:
    return "blobs/" + digest.check(d, "descriptor").replace(":", "/")


def _verified(reader, desc: dict, what: str) -> tuple[bytes, dict]:
    data, doc = _json(reader, _blob_path(desc.get("digest", "")))
    if digest.of(data) != desc["digest"]:
        raise PyociError(f"{what} {desc['digest']}: content does not match its digest")
    return data, doc


def _image_name(name: str) -> str | None:
    """A ref that names an image (`busybox:1.36`, `registry/x`) becomes a tag; a bare tag (`latest`) does not."""
    if not name or not any(c in name for c in ":/"):
        return None
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _pick(manifests: list[dict], ref: str | None, where: str) -> dict:
    if ref:
        found = [m for m in manifests if m.get("annotations", {}).get(REF_NAME) == ref
                 or m.get("annotations", {}).get(CONTAINERD_NAME) == ref]
        if not found:
            refs = sorted({m.get("annotations", {}).get(REF_NAME, "") for m in manifests} - {""})
            raise PyociError(f"{where}: no manifest named {ref!r} (has: {', '.join(refs) or 'none named'})")
        return found[0]
    platform_ok = [m for m in manifests if m.get("platform", {}).get("architecture", ARCH) == ARCH
                   and m.get("platform", {}).get("os", "linux") == "linux"]
    if len(platform_ok) != 1:
        refs = sorted({m.get("annotations", {}).get(REF_NAME, "") for m in manifests} - {""})
        raise PyociError(f"{where}: {len(platform_ok)} manifests for linux/{ARCH}; choose one with --ref "
                         f"({', '.join(refs) or 'none named'})")
    return platform_ok[0]


def _oci(reader, ref: str | None, where: str) -> SourceImage:
    _, index = _json(reader, "index.json")
    desc = _pick(index.get("manifests", []), ref, where)
    annotations = dict(desc.get("annotations", {}))
    while desc.get("mediaType") in INDEX_TYPES:
        _, nested = _verified(reader, desc, "index")
        desc = _pick(nested.get("manifests", []), None, where)
    if desc.get("mediaType", MANIFEST_TYPES[0]) not in MANIFEST_TYPES:
        raise PyociError(f"{where}: unsupported manifest media type {desc.get('mediaType')!r}")
    manifest_bytes, manifest = _verified(reader, desc, "manifest")
    conf = manifest.get("config", {})
    with reader.open(_blob_path(conf.get("digest", ""))) as f:
        config = f.read()
    layers = [Blob(_blob_path(layer.get("digest", "")), layer["digest"], layer.get("mediaType", ""), layer.get("size"))
              for layer in manifest.get("layers", [])]
    tags = [t for t in (_image_name(annotations.get(CONTAINERD_NAME, "")), _image_name(annotations.get(REF_NAME, "")))
            if t]
    return SourceImage(config, conf["digest"], layers, manifest_bytes, tags[:1], manifest.get("annotations", {}))


def _docker(reader, ref: str | None, where: str) -> SourceImage:
    _, entries = _json(reader, "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise PyociError(f"{where}: manifest.json lists no image")
    if ref:
        entries = [e for e in entries if _image_name(ref) in e.get("RepoTags") or []]
        if not entries:
            raise PyociError(f"{where}: no image tagged {ref!r}")
    elif len(entries) > 1:
        raise PyociError(f"{where}: {len(entries)} images in the archive; choose one with --ref NAME:TAG")
    entry = entries[0]
    with reader.open(entry["Config"]) as f:
        config = f.read()
    named = os.path.basename(entry["Config"]).removesuffix(".json")
    config_digest = f"sha256:{named}" if digest.DIGEST.match(f"sha256:{named}") else None
    layers = [Blob(p, None, "application/vnd.oci.image.layer.v1.tar") for p in entry.get("Layers", [])]
    return SourceImage(config, config_digest, layers, None, list(entry.get("RepoTags") or []))


def open_source(path: str, ref: str | None = None):
    """(reader, SourceImage) for path; the kind is found from the contents, or named as skopeo does
    (`oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`, optionally `:REF` after it)."""
    kind = None
    for prefix in ("oci-archive:", "docker-archive:", "oci:"):
        if path.startswith(prefix):
            kind, path = prefix[:-1], path[len(prefix):]
            if ":" in path and not os.path.exists(path):
                path, ref = path.split(":", 1)[0], ref or path.split(":", 1)[1]
            break
    if not os.path.exists(path):
        raise PyociError(f"{path}: no such file or directory")
    reader = DirReader(path) if os.path.isdir(path) else TarReader(path)
    try:
        if kind == "docker-archive" or (kind is None and reader.exists("manifest.json")
                                        and not reader.exists("index.json")):
            return reader, _docker(reader, ref, path)
        if not reader.exists("oci-layout"):
            raise PyociError(f"{path}: neither an OCI image layout (no oci-layout) nor a docker save archive "
                             "(no manifest.json)")
        return reader, _oci(reader, ref, path)
    except (KeyError, TypeError, AttributeError) as exc:
        reader.close()
        raise PyociError(f"{path}: malformed image metadata ({exc!r})") from None
    except BaseException:
        reader.close()
        raise
