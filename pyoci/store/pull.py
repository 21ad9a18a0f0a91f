"""`pyoci image pull REF`: an image from a registry into the store, through the same path as an import.

The manifest (an index resolved to this host's platform, or --platform, as podman chooses), then the
config, are fetched and verified; the layers the store lacks are fetched by several threads at once, each
hashed as it streams into the import's staging directory and unpacked in order as soon as it is whole. A
failure anywhere (the network dropping for good, a digest that does not match) removes the staging and
records nothing; a dropped connection is first resumed (registries.BlobReader).
"""
from __future__ import annotations

from .. import jsonio
from ..errors import PyociError
from . import digest, info
from .images import Limits, store_image
from .layout import Layout
from .progress import Progress
from .reference import parse
from .registries import Options, endpoints, load_conf, search_registries
from .registry import Client, HTTPError, NetworkError
from .sources import HOST_PLATFORM, INDEX_TYPES, MANIFEST_TYPES, Blob, SourceImage, pick_platform

PARALLEL = 4  # layers fetched at once, as containers/image does by default (6) on a smaller machine
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")


def parse_platform(text: str) -> tuple[str, str, str]:
    """`os/arch[/variant]` (podman's --platform); empty: this host's."""
    if not text:
        return HOST_PLATFORM
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PyociError(f"--platform {text!r}: expected os/arch[/variant], as linux/arm64/v8")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def _checked(data: bytes, want: str, what: str) -> bytes:
    if want and digest.of(data) != want:
        raise PyociError(f"{what}: content does not match its digest {want}")
    return data


def _doc(data: bytes, what: str) -> dict:
    try:
        doc = jsonio.loads(data)
    except ValueError as exc:
        raise PyociError(f"{what}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PyociError(f"{what}: not a JSON object")
    return doc


def resolve_manifest(client: Client, reference: str, platform: tuple[str, str, str], where: str) -> tuple[bytes, dict]:
    """The image manifest reference names, through an index if it is one."""
    data, media = client.manifest(reference)
    _checked(data, reference if reference.startswith("sha256:") else "", f"manifest {reference}")
    doc = _doc(data, f"manifest {reference}")
    media = doc.get("mediaType") or media
    if media in INDEX_TYPES or (not media and "manifests" in doc):
        desc = pick_platform(doc.get("manifests") or [], platform, where)
        d = digest.check(desc.get("digest"), f"{where}: index entry")
        data, media = client.manifest(d)
        _checked(data, d, f"manifest {d}")
        doc = _doc(data, f"manifest {d}")
        media = doc.get("mediaType") or media
    if media in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise PyociError(f"{where}: a Docker schema 1 manifest (deprecated, unsigned layers): not supported")
    if media and media not in MANIFEST_TYPES:
        raise PyociError(f"{where}: unsupported manifest media type {media!r}")
    return data, doc


def pull(layout: Layout, ref_text: str, opts: Options, platform: str = "", progress: Progress | None = None,
         limits: Limits | None = None) -> str:
    """Pulls ref_text into the store; returns the image id."""
    info.require_overlay(layout)
    conf = load_conf()
    ref = parse(ref_text, search_registries(conf))
    want = parse_platform(platform)
    tried = []
    for ep in endpoints(ref, conf):
        client = Client(ep, opts)
        try:
            client.ping()
            manifest, doc = resolve_manifest(client, ref.reference, want, str(ref))
            break
        except (NetworkError, HTTPError) as exc:
            client.close()
            tried.append(str(exc))
    else:
        raise PyociError(f"{ref}: " + "; ".join(tried))
    try:
        conf_desc = doc.get("config") or {}
        config_digest = digest.check(conf_desc.get("digest"), f"{ref}: config")
        config = _checked(client.blob_bytes(config_digest), config_digest, f"config {config_digest}")
        layers = []
        for i, layer in enumerate(doc.get("layers") or []):
            layers.append(Blob("", digest.check(layer.get("digest"), f"{ref}: layers[{i}]"),
                               layer.get("mediaType", ""), layer.get("size")))
        tag = ref.stored_tag()
        src = SourceImage(config, config_digest, layers, manifest, [tag] if tag else [],
                          doc.get("annotations") or {}, origin=f"{ep.host}/{ep.repository}")
        with layout.lock(exclusive=False):
            return store_image(layout, src, lambda b: client.blob(b.digest, b.size), src.tags,
                               progress or Progress(), limits, parallel=PARALLEL)
    finally:
        client.close()
