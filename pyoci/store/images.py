"""Images in the store: import (layers unpacked once, by chain id), references, removal, garbage collection
and export as an OCI image layout.

An import verifies every digest it is given (blob, diff_id, config, manifest) and unpacks every new layer
into a staging directory first; only when all of them are whole are they renamed into place and the image
recorded, so a corrupt or hostile image leaves nothing behind. Two imports sharing a layer may both unpack
it: the first rename wins and the other copy is dropped.
"""
from __future__ import annotations

import datetime
import errno
import gzip
import os
import re
import shutil
import tarfile
import threading

from .. import jsonio
from ..errors import PyociError
from ..record import Record
from . import digest, info
from .layout import Layout, short_id
from .progress import Progress, human_size
from .sources import Blob, SourceImage, open_source
from .unpack import unpack

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd", "": "application/vnd.oci.image.layer.v1.tar"}
TAG = re.compile(r"^[a-z0-9]+([._/-]+[a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_tag(name: str) -> str:
    tag = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
    if not TAG.match(tag):
        raise PyociError(f"invalid image name {name!r} (lowercase name[:tag])")
    return tag


def compression(head: bytes) -> str:
    """From the first bytes, not the media type: Docker archives and hand-made layouts often mislabel."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return ""


def decompressed(f):
    kind = compression(f.peek(4)[:4] if hasattr(f, "peek") else b"")
    if kind == "gzip":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    return f


class Limits(Record):
    """What one layer may unpack to: a layer past either limit is a decompression bomb, refused before it
    fills the disk. The ratio is checked once a layer is past ratio_floor, so a small layer of empty files
    (tar headers compress ~100:1) never trips it. No real image comes near the defaults; the flags change them."""
    max_size: int = 64 << 30
    max_ratio: int = 200
    ratio_floor: int = 256 << 20


class _Bounded:
    """Reads the decompressed layer, refusing it once it passes its limits."""

    def __init__(self, f, limits: Limits, compressed: int) -> None:
        self.f, self.limits, self.compressed, self.size = f, limits, compressed, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.size += len(data)
        lim = self.limits
        if lim.max_size and self.size > lim.max_size:
            raise PyociError(f"unpacks to more than {human_size(lim.max_size)} (--max-layer-size)")
        if lim.max_ratio and self.size > max(lim.ratio_floor, lim.max_ratio * self.compressed):
            raise PyociError(f"unpacks to more than {lim.max_ratio} times its compressed size "
                             f"({human_size(self.compressed)} -> over {human_size(self.size)}): a decompression bomb? "
                             "(--max-layer-ratio)")
        return data


def _copy_blob(src, dest: str, bar, stop) -> tuple[str, int, str]:
    """Copies a blob into the store's staging; its digest, size and compression (from its first bytes).
    Stops when the stop event is set (another layer of the import failed)."""
    hr = digest.HashingReader(src, bar.advance)
    head = b""
    with open(dest, "wb") as out:
        while not stop.is_set() and (chunk := hr.read(1 << 20)):
            head = head or chunk[:4]
            out.write(chunk)
    return hr.digest(), hr.size, compression(head)


def _unpack_blob(blob_path: str, diff: str, lowers: list[str], limits: Limits) -> str:
    """Unpacks a stored blob into diff; returns the digest of its uncompressed tar (the diff_id)."""
    import zlib

    with open(blob_path, "rb", buffering=1 << 20) as raw:
        try:
            hr = digest.HashingReader(_Bounded(decompressed(raw), limits, os.fstat(raw.fileno()).st_size))
            unpack(hr, diff, lowers)
            hr.drain()
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise PyociError(f"truncated or corrupt compressed data ({exc})") from None
        except Exception as exc:  # zstandard's only error type
            if type(exc).__name__ != "ZstdError":
                raise
            raise PyociError(f"truncated or corrupt zstd data ({exc})") from None
    return hr.digest()


def _install_layer(layout: Layout, chains: list[str], i: int, staged: str) -> None:
    lid = chains[i].split(":")[1]
    with open(os.path.join(staged, "link"), "w") as f:
        f.write(short_id(lid))
    if i:
        with open(os.path.join(staged, "lower"), "w") as f:
            f.write(":".join(f"l/{short_id(c.split(':')[1])}" for c in reversed(chains[:i])))
    try:
        os.rename(staged, layout.layer(lid))
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    try:
        os.symlink(f"../{lid}/diff", os.path.join(layout.links, short_id(lid)))
    except FileExistsError:
        pass


def _write_blob(layout: Layout, data: bytes) -> str:
    d = digest.of(data)
    tmp = f"{layout.blob(d)}.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, layout.blob(d))
    return d


def _tag_only(layout: Layout, image_id: str, tags: list[str], origin: str) -> bool:
    """An image stored already (its config, so its id, and every layer) keeps its manifest and blobs: a
    copy of it in another format only adds its tags, never replaces what export and push give out."""
    rec = layout.load()
    image = rec["images"].get(image_id)
    if image is None or not all(layout.has_layer(lid) for lid in image["layers"]):
        return False
    _record(layout, image_id, tags, {"origins": [origin]} if origin else None)
    return True


def _record(layout: Layout, image_id: str, tags: list[str], fields: dict | None) -> None:
    """Records the image (fields: manifest, layers, ...; None when it is stored already) with tags moved to it."""
    with layout.records_for_update() as rec:
        for other in rec["images"].values():
            other["tags"] = [t for t in other.get("tags", []) if t not in tags]
        old = rec["images"].get(image_id, {})
        new = {**(fields or {}), **old}
        new["tags"] = sorted(set(old.get("tags", [])) | set(tags))
        new["origins"] = sorted(set(old.get("origins", [])) | set((fields or {}).get("origins", [])))
        new["imported"] = old.get("imported") or now()
        rec["images"][image_id] = new


def store_image(layout: Layout, src: SourceImage, open_blob, tags: list[str], progress: Progress,
                limits: Limits | None = None, parallel: int = 1) -> str:
    """Verifies and stores src (the store lock held shared by the caller); returns the image id.
    Blobs are fetched by up to `parallel` threads (a registry's; a local source is read in one), each hashed
    as it streams into staging, and unpacked in order, each as soon as it is whole and its lower ones are in."""
    from concurrent.futures import ThreadPoolExecutor

    from .imageconfig import parse

    limits = limits or Limits()
    if src.config_digest and digest.of(src.config) != src.config_digest:
        raise PyociError(f"config {src.config_digest}: content does not match its digest")
    config = parse(src.config)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(src.layers):
        raise PyociError(f"image config lists {len(diff_ids)} diff_ids for {len(src.layers)} layers")
    for i, d in enumerate(diff_ids):
        digest.check(d, f"rootfs.diff_ids[{i}]")
    for i, blob in enumerate(src.layers):
        if blob.digest:
            digest.check(blob.digest, f"layers[{i}].digest")
    tags = [normalize_tag(t) for t in tags]
    image_id = digest.of(src.config)
    if _tag_only(layout, image_id, tags, src.origin):
        return image_id
    chains = digest.chain_ids(diff_ids)
    lids = [c.split(":")[1] for c in chains]
    n = len(src.layers)
    staging = layout.staging("import-")

    stop = threading.Event()

    def fetch(i: int, bar):
        blob = src.layers[i]
        with open_blob(blob) as f:
            d, size, kind = _copy_blob(f, os.path.join(staging, f"blob{i}"), bar, stop)
        if blob.digest and d != blob.digest:
            raise PyociError(f"layer {i} ({blob.digest}): blob content does not match its digest")
        return d, size, kind

    pool = ThreadPoolExecutor(max_workers=max(1, parallel))
    try:
        stored = [bool(b.digest) and layout.has_layer(lid) and os.path.exists(layout.blob(b.digest))
                  for b, lid in zip(src.layers, lids)]
        bars = [progress.bar(f"layer {i + 1}/{n} {(b.digest or diff_ids[i])[7:19]}", b.size)
                for i, b in enumerate(src.layers)]
        jobs = {i: pool.submit(fetch, i, bars[i]) for i in range(n) if not stored[i]}
        descs, blobs, layers = [], [], []
        for i, (blob, diff_id) in enumerate(zip(src.layers, diff_ids)):
            if stored[i]:
                descs.append({"mediaType": blob.media_type, "digest": blob.digest,
                              "size": os.path.getsize(layout.blob(blob.digest))})
                bars[i].finish("already stored")
                continue
            d, size, kind = jobs[i].result()
            blobs.append((os.path.join(staging, f"blob{i}"), d))
            descs.append({"mediaType": blob.media_type or LAYER_TYPES[kind], "digest": d, "size": size})
            if not layout.has_layer(lids[i]):
                staged = os.path.join(staging, f"layer{i}")
                os.makedirs(os.path.join(staged, "diff"))
                lowers = [layout.layer(lids[j], "diff") if layout.has_layer(lids[j])
                          else os.path.join(staging, f"layer{j}", "diff") for j in reversed(range(i))]
                try:
                    got = _unpack_blob(blobs[-1][0], os.path.join(staged, "diff"), lowers, limits)
                except PyociError as exc:
                    raise PyociError(f"layer {i} ({d}): {exc}", exc.errno) from None
                if got != diff_id:
                    raise PyociError(f"layer {i} ({d}): its uncompressed content does not match diff_id {diff_id}")
                layers.append((i, staged))
            bars[i].finish()
        manifest = src.manifest or jsonio.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": image_id, "size": len(src.config)},
             "layers": descs}).encode()
        for staged_blob, d in blobs:
            os.replace(staged_blob, layout.blob(d))
        _write_blob(layout, src.config)
        manifest_digest = _write_blob(layout, manifest)
        for i, staged in layers:
            _install_layer(layout, chains, i, staged)
    finally:
        stop.set()  # a failed import stops the fetches still running at their next chunk
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging, ignore_errors=True)
    fields = {"manifest": manifest_digest, "layers": lids, "created": config.get("created", ""),
              "size": sum(d["size"] for d in descs)}
    if src.origin:
        fields["origins"] = [src.origin]
    _record(layout, image_id, tags, fields)
    return image_id


def import_image(layout: Layout, path: str, refs: list[str], tags: list[str], progress: Progress,
                 limits: Limits | None = None) -> list[str]:
    """Imports every image path holds that refs choose (all of them if none): the ids, one per image."""
    info.require_overlay(layout)
    with layout.lock(exclusive=False):
        reader, sources = open_source(path, refs)
        try:
            return [store_image(layout, src, lambda b: reader.open(b.path), tags or src.tags, progress, limits)
                    for src in sources]
        finally:
            reader.close()


class NoImage(PyociError):
    """No stored image has that name (image run and bundle create then pull it)."""


def resolve(rec: dict, ref: str) -> str:
    """An image id from a full id, a unique id prefix of 4+ hex digits, or a name[:tag]."""
    images = rec["images"]
    plain = ref.removeprefix("sha256:")
    if re.fullmatch(r"[0-9a-f]{4,64}", plain):
        hits = [i for i in images if i[7:].startswith(plain)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise PyociError(f"image id prefix {ref!r} is ambiguous")
    try:
        tag = normalize_tag(ref)
    except PyociError:
        tag = ref
    # Docker Hub's names are stored in full by some tools (skopeo: docker.io/library/busybox:1)
    for name in (tag, f"docker.io/{tag}", f"docker.io/library/{tag}"):
        for image_id, image in images.items():
            if name in image.get("tags", []):
                return image_id
    raise NoImage(f"no image {ref!r} in the store")


def read_blob(layout: Layout, d: str) -> bytes:
    try:
        with open(layout.blob(d), "rb") as f:
            return f.read()
    except OSError as exc:
        raise PyociError(f"blob {d}: {exc.strerror}", exc.errno) from None


def image_config(layout: Layout, image_id: str) -> dict:
    from .imageconfig import parse

    return parse(read_blob(layout, image_id))


def inspect(layout: Layout, ref: str) -> dict:
    rec = layout.load()
    image_id = resolve(rec, ref)
    image = rec["images"][image_id]
    manifest = jsonio.loads(read_blob(layout, image["manifest"]))
    return {"id": image_id, "tags": image.get("tags", []), "created": image.get("created", ""),
            "manifest": image["manifest"], "size": image.get("size", 0),
            "layers": [{"id": lid, "digest": d.get("digest"), "mediaType": d.get("mediaType"), "size": d.get("size"),
                        "dir": layout.layer(lid)} for lid, d in zip(image["layers"], manifest.get("layers", []))],
            "config": image_config(layout, image_id)}


def tag(layout: Layout, ref: str, name: str) -> None:
    name = normalize_tag(name)
    with layout.records_for_update() as rec:
        image_id = resolve(rec, ref)
        for other in rec["images"].values():
            other["tags"] = [t for t in other.get("tags", []) if t != name]
        rec["images"][image_id]["tags"] = sorted(set(rec["images"][image_id]["tags"]) | {name})


def remove(layout: Layout, refs: list[str], force: bool) -> tuple[list[str], list[str]]:
    """Untags a tag of an image that has others; otherwise removes the image, then collects what it freed.
    An image a bundle was made from stays unless forced (the bundle keeps its layers either way); so does one
    not found, and the others named with it are removed all the same. Returns (what was done, what was not)."""
    said, refused = [], []
    with layout.lock(exclusive=True):
        with layout.records_for_update() as rec:
            for ref in refs:
                try:
                    image_id = resolve(rec, ref)
                except PyociError as exc:
                    refused.append(str(exc))
                    continue
                image = rec["images"][image_id]
                try:
                    tag_name = normalize_tag(ref)
                except PyociError:
                    tag_name = ""
                if tag_name in image["tags"] and len(image["tags"]) > 1:
                    image["tags"].remove(tag_name)
                    said.append(f"untagged {tag_name}")
                    continue
                users = [b.get("bundle", lid) for lid, b in rec["bundles"].items() if b.get("image") == image_id]
                if users and not force:
                    refused.append(f"image {ref} is used by bundle {users[0]} (remove it first, or --force)")
                    continue
                del rec["images"][image_id]
                said.append(f"deleted {image_id}")
        said += collect(layout)
    return said, refused


def collect(layout: Layout) -> list[str]:
    """Removes layers, links and blobs no image or bundle uses, and staging left by dead imports.
    The caller holds the store lock exclusively, so no import is in flight."""
    rec = layout.load()
    keep_layers, keep_blobs = set(rec["bundles"]), set()
    for image_id, image in rec["images"].items():
        keep_layers |= set(image["layers"])
        keep_blobs |= {image_id, image["manifest"]}
        manifest = jsonio.loads(read_blob(layout, image["manifest"]))
        keep_blobs |= {d["digest"] for d in manifest.get("layers", [])}
    for bundle in rec["bundles"].values():
        keep_layers |= set(bundle.get("layers", []))
    said = []
    for name in sorted(os.listdir(layout.overlay)):
        if name != "l" and name not in keep_layers:
            shutil.rmtree(layout.layer(name))
            said.append(f"removed layer {name}")
    for name in os.listdir(layout.links):
        if not os.path.exists(os.path.join(layout.links, name)):
            os.unlink(os.path.join(layout.links, name))
    for name in os.listdir(layout.blobs):
        if f"sha256:{name}" not in keep_blobs:
            os.unlink(os.path.join(layout.blobs, name))
            said.append(f"removed blob sha256:{name}")
    for name in os.listdir(layout.tmp):
        shutil.rmtree(os.path.join(layout.tmp, name), ignore_errors=True)
    return said


def prune(layout: Layout) -> list[str]:
    with layout.lock(exclusive=True):
        return collect(layout)


def layers(layout: Layout) -> list[dict]:
    """Every layer directory: which images and bundles use it, its parent, its size on disk."""
    rec = layout.load()
    users: dict[str, list[str]] = {}
    parents: dict[str, str] = {}
    for image_id, image in rec["images"].items():
        name = (image.get("tags") or [image_id[7:19]])[0]
        for i, lid in enumerate(image["layers"]):
            users.setdefault(lid, []).append(name)
            parents[lid] = image["layers"][i - 1] if i else ""
    out = []
    for name in sorted(os.listdir(layout.overlay)):
        if name == "l":
            continue
        bundle = rec["bundles"].get(name.removesuffix("-init"))  # a container layer, or its init layer
        out.append({"id": name, "kind": "container" if bundle else "image",
                    "parent": bundle["layers"][-1] if bundle and bundle.get("layers") else parents.get(name, ""),
                    "usedBy": [bundle["bundle"]] if bundle else sorted(set(users.get(name, []))),
                    "size": info.disk_usage(layout.layer(name))})
    return out


def export(layout: Layout, ref: str, dest: str) -> str:
    """Writes the image as an OCI image layout (`oci:DIR[:REF]`, the default) or an OCI archive
    (`oci-archive:FILE[:REF]`); the blobs are the stored ones, so digests are the imported ones."""
    rec = layout.load()
    image_id = resolve(rec, ref)
    image = rec["images"][image_id]
    kind, _, rest = dest.partition(":") if dest.startswith(("oci:", "oci-archive:")) else ("oci", "", dest)
    path, _, name = rest.partition(":")
    name = name or (image["tags"][0].rsplit(":", 1)[1] if image["tags"] else "latest")
    manifest_bytes = read_blob(layout, image["manifest"])
    manifest = jsonio.loads(manifest_bytes)
    wanted = [image_id, image["manifest"]] + [d["digest"] for d in manifest.get("layers", [])]
    target = path if kind == "oci" else layout.staging("export-")
    try:
        os.makedirs(os.path.join(target, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(target, "oci-layout"), "w") as f:
            jsonio.dump({"imageLayoutVersion": "1.0.0"}, f)
        for d in wanted:
            out = os.path.join(target, "blobs", "sha256", d[7:])
            if not os.path.exists(out):
                shutil.copyfile(layout.blob(d), out)
        index_path = os.path.join(target, "index.json")
        try:
            with open(index_path) as f:
                index = jsonio.load(f)
        except FileNotFoundError:
            index = {"schemaVersion": 2, "manifests": []}
        index["manifests"] = [m for m in index.get("manifests", [])
                              if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != name]
        index["manifests"].append({"mediaType": manifest.get("mediaType", OCI_MANIFEST), "digest": image["manifest"],
                                   "size": len(manifest_bytes),
                                   "annotations": {"org.opencontainers.image.ref.name": name}})
        with open(index_path, "w") as f:
            jsonio.dump(index, f)
        if kind == "oci-archive":
            with tarfile.open(path, "w") as tar:
                for item in ("oci-layout", "index.json", "blobs"):
                    tar.add(os.path.join(target, item), item)
    finally:
        if kind != "oci":
            shutil.rmtree(target, ignore_errors=True)
    return name


def blob_source(layout: Layout, image_id: str, extra: list[Blob], config: bytes, manifest: bytes) -> SourceImage:
    """A stored image with layers added on top, as an import source (how a commit becomes an image)."""
    image = layout.load()["images"][image_id]
    base = jsonio.loads(read_blob(layout, image["manifest"]))
    blobs = [Blob(layout.blob(d["digest"]), d["digest"], d.get("mediaType", ""), d.get("size"))
             for d in base.get("layers", [])]
    return SourceImage(config, digest.of(config), blobs + extra, manifest)
