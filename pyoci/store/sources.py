"""Images to import: an OCI image layout directory, an OCI archive (a tar of one), or a `docker save` archive.

Each is read through a small file reader (directory or tar) and turned into one SourceImage: the manifest's
layer descriptors, the config bytes, tags, and a way to open each layer blob. Digests are verified by the
importer as it reads, never trusted.
"""
from __future__ import annotations

import os
import platform
import tarfile

from .. import jsonio
from ..errors import PyociError
from ..record import Record, field
from . import digest

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "ppc64le": "ppc64le",
        "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}.get(platform.machine(), platform.machine())
# (os, architecture, variant) of this host, as podman chooses from an index: arm64 is v8, armv7l v7
VARIANT = {"aarch64": "", "armv7l": "v7", "armv6l": "v6"}.get(platform.machine(), "")
HOST_PLATFORM = ("linux", ARCH, VARIANT)


class Blob(Record):
    """A layer blob: its digest if the source names one (a docker archive does not), and how to open it."""
    path: str
    digest: str | None
    media_type: str
    size: int | None = None


class SourceImage(Record):
    """manifest is the source's own manifest bytes, kept so an export gives back the same image; a docker
    archive has none and gets one made for it."""
    config: bytes
    config_digest: str | None
    layers: list[Blob]
    manifest: bytes | None = None
    tags: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # registry/repository it was pulled from: a push to that registry can mount its blobs


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
        except tarfile.TarError:
            raise PyociError(f"{path}: not an image: neither a directory nor a tar archive (an OCI layout, "
                             "an OCI archive or a docker save archive)") from None
        except OSError as exc:
            raise PyociError(f"{path}: {exc.strerror}", exc.errno) from None
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
        return data, jsonio.loads(data)
    except ValueError as exc:
        raise PyociError(f"{rel}: not JSON: {exc}") from None


def _blob_path(d: str) -> str:
    return "blobs/" + digest.check(d, "descriptor").replace(":", "/")


def _verified(reader, desc: dict, what: str) -> tuple[bytes, dict]:
    rel = _blob_path(desc.get("digest", ""))
    if not reader.exists(rel):
        raise PyociError(f"{what} {desc['digest']}: the index names it but the image has no such blob ({rel})")
    data, doc = _json(reader, rel)
    if digest.of(data) != desc["digest"]:
        raise PyociError(f"{what} {desc['digest']}: content does not match its digest")
    return data, doc


def image_name(name: str) -> str | None:
    """The tag an image is stored under for a ref name: a full name (`busybox:1.36`, `registry/x`) as it is,
    a bare one (`bookworm`, what `skopeo copy ... oci:DIR:bookworm` writes) as that name's latest."""
    if not name:
        return None
    if any(c in name for c in ":/"):
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
    return f"{name}:latest"


def _platform_ok(m: dict, want: tuple[str, str, str]) -> bool:
    p = m.get("platform") or {}
    os_, arch, variant = want
    return (p.get("os", os_) == os_ and p.get("architecture", arch) == arch
            and (not variant or p.get("variant", variant) == variant))


def pick_platform(manifests: list[dict], want: tuple[str, str, str], where: str) -> dict:
    """The manifest of an index for platform want (os, architecture, variant) as podman chooses it: the
    first that matches; an entry without a platform matches any."""
    for m in manifests:
        if _platform_ok(m, want):
            return m
    have = sorted({"/".join(x for x in (m.get("platform", {}).get("os", "?"), m.get("platform", {}).get(
        "architecture", "?"), m.get("platform", {}).get("variant", "")) if x) for m in manifests})
    raise PyociError(f"{where}: no manifest for {'/'.join(x for x in want if x)} (has: {', '.join(have) or 'none'})")


def _named(m: dict) -> str:
    a = m.get("annotations") or {}
    return a.get(CONTAINERD_NAME) or a.get(REF_NAME) or ""


def _pick(manifests: list[dict], refs: list[str], where: str) -> list[dict]:
    """The index entries refs name; with no refs, every named one for this platform, or the one entry."""
    if refs:
        out = []
        for ref in refs:
            found = [m for m in manifests if ref in ((m.get("annotations") or {}).get(REF_NAME),
                                                     (m.get("annotations") or {}).get(CONTAINERD_NAME))]
            if not found:
                names = sorted({_named(m) for m in manifests} - {""})
                raise PyociError(f"{where}: no manifest named {ref!r} (has: {', '.join(names) or 'none named'})")
            out.append(found[0])
        return out
    here = [m for m in manifests if _platform_ok(m, HOST_PLATFORM)]
    named = [m for m in here if _named(m)]
    if named:
        return named
    if len(here) != 1:
        raise PyociError(f"{where}: {len(here)} unnamed manifests for linux/{ARCH}; choose one with --ref")
    return here


def _oci(reader, refs: list[str], where: str) -> list[SourceImage]:
    _, index = _json(reader, "index.json")
    out = []
    for desc in _pick(index.get("manifests", []), refs, where):
        annotations = dict(desc.get("annotations") or {})
        while desc.get("mediaType") in INDEX_TYPES:
            _, nested = _verified(reader, desc, "index")
            desc = pick_platform(nested.get("manifests", []), HOST_PLATFORM, where)
        if desc.get("mediaType", MANIFEST_TYPES[0]) not in MANIFEST_TYPES:
            raise PyociError(f"{where}: unsupported manifest media type {desc.get('mediaType')!r}")
        manifest_bytes, manifest = _verified(reader, desc, "manifest")
        conf = manifest.get("config", {})
        rel = _blob_path(conf.get("digest", ""))
        if not reader.exists(rel):
            raise PyociError(f"config {conf['digest']}: the manifest names it but the image has no such blob")
        with reader.open(rel) as f:
            config = f.read()
        layers = [Blob(_blob_path(layer.get("digest", "")), layer["digest"], layer.get("mediaType", ""),
                       layer.get("size")) for layer in manifest.get("layers", [])]
        tag = image_name(annotations.get(CONTAINERD_NAME, "")) or image_name(annotations.get(REF_NAME, ""))
        out.append(SourceImage(config, conf["digest"], layers, manifest_bytes, [tag] if tag else [],
                               manifest.get("annotations", {})))
    return out


def _docker(reader, refs: list[str], where: str) -> list[SourceImage]:
    _, entries = _json(reader, "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise PyociError(f"{where}: manifest.json lists no image")
    if refs:
        chosen = []
        for ref in refs:
            found = [e for e in entries if image_name(ref) in (e.get("RepoTags") or [])]
            if not found:
                raise PyociError(f"{where}: no image tagged {ref!r}")
            chosen.append(found[0])
        entries = chosen
    out = []
    for entry in entries:
        with reader.open(entry["Config"]) as f:
            config = f.read()
        named = os.path.basename(entry["Config"]).removesuffix(".json")
        config_digest = f"sha256:{named}" if digest.DIGEST.match(f"sha256:{named}") else None
        layers = [Blob(p, None, "application/vnd.oci.image.layer.v1.tar") for p in entry.get("Layers", [])]
        out.append(SourceImage(config, config_digest, layers, None, list(entry.get("RepoTags") or [])))
    return out


def open_source(path: str, refs: list[str] | None = None):
    """(reader, [SourceImage]) for path: the images refs name, or every named one; the kind is found from
    the contents, or named as skopeo does (`oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`, optionally
    `:REF` after it)."""
    kind = None
    refs = list(refs or [])
    for prefix in ("oci-archive:", "docker-archive:", "oci:"):
        if path.startswith(prefix):
            kind, path = prefix[:-1], path[len(prefix):]
            if ":" in path and not os.path.exists(path):
                path, ref = path.split(":", 1)
                refs = refs or [ref]
            break
    if not os.path.exists(path):
        raise PyociError(f"{path}: no such file or directory")
    reader = DirReader(path) if os.path.isdir(path) else TarReader(path)
    try:
        if kind == "docker-archive" or (kind is None and reader.exists("manifest.json")
                                        and not reader.exists("index.json")):
            return reader, _docker(reader, refs, path)
        if not reader.exists("oci-layout"):
            raise PyociError(f"{path}: neither an OCI image layout (no oci-layout) nor a docker save archive "
                             "(no manifest.json)")
        return reader, _oci(reader, refs, path)
    except (KeyError, TypeError, AttributeError) as exc:
        reader.close()
        raise PyociError(f"{path}: malformed image metadata ({exc!r})") from None
    except BaseException:
        reader.close()
        raise
