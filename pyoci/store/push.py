"""`pyoci image push IMAGE REF`: a stored image to a registry, as its stored blobs and manifest, so that its
digest there is the one the store has.

Each blob the registry lacks is mounted from another repository of the same registry that the image came
from or went to (a cross-repository mount: no bytes sent), else uploaded in one PUT; several at once. The
manifest goes last, under the tag, and the digest the registry reports must be the image's.
"""
from __future__ import annotations

import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from .. import jsonio
from ..errors import PyociError
from .images import read_blob, resolve
from .layout import Layout
from .progress import Progress
from .reference import parse
from .registries import Options, endpoints, load_conf, search_registries
from .registry import Client

PARALLEL = 3
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class _Counted:
    """A blob file read by http.client, each chunk shown on the blob's progress line."""

    def __init__(self, f, bar) -> None:
        self.f, self.bar = f, bar

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.bar.advance(len(data))
        return data


def _upload(client: Client, layout: Layout, d: str, size: int, mounts: list[str], bar) -> str:
    """Puts blob d in the registry's repository; says how (already there, mounted, uploaded)."""
    what = f"blob {d}"
    head = client.request("HEAD", f"blobs/{d}", ok=(200, 404), what=what)
    head.read()
    if head.status == 200:
        return "already there"
    location = ""
    for source in mounts:
        resp = client.request("POST", f"blobs/uploads/?mount={d}&from={urllib.parse.quote(source)}", ok=(201, 202),
                              what=what, body=b"")
        resp.read()
        if resp.status == 201:
            return f"mounted from {source}"
        location = resp.getheader("Location", "")  # not mountable: the upload it opened serves instead
        break
    if not location:
        resp = client.request("POST", "blobs/uploads/", ok=(202,), what=what, body=b"")
        resp.read()
        location = resp.getheader("Location", "")
    if not location:
        raise PyociError(f"{what}: {client.where()}: the registry gave no upload location")
    url = urllib.parse.urljoin(f"{client.scheme}://{client.host}/", location)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": d})
    with open(layout.blob(d), "rb") as f:
        resp = client.request("PUT", url, {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                              body=_Counted(f, bar), ok=(201,), what=what)
    resp.read()
    return "uploaded"


def push(layout: Layout, image_ref: str, dest: str, opts: Options, progress: Progress | None = None) -> str:
    """Pushes the stored image image_ref to dest (registry/repository[:tag]); returns its manifest digest."""
    progress = progress or Progress()
    rec = layout.load()
    image_id = resolve(rec, image_ref)
    image = rec["images"][image_id]
    conf = load_conf()
    ref = parse(dest, search_registries(conf))
    if ref.digest:
        raise PyociError(f"{dest}: push to a tag, not a digest (the registry computes the digest)")
    ep = endpoints(ref, conf, for_push=True)[0]
    client = Client(ep, opts, "pull,push")
    here = f"{ep.host}/{ep.repository}"
    mounts = [o.split("/", 1)[1] for o in image.get("origins", []) if o.split("/", 1)[0] == ep.host and o != here]
    for source in mounts:
        client.add_scope(f"repository:{source}:pull")
    manifest_bytes = read_blob(layout, image["manifest"])
    manifest = jsonio.loads(manifest_bytes)
    blobs = [(d["digest"], os.path.getsize(layout.blob(d["digest"]))) for d in manifest.get("layers", [])]
    blobs.append((image_id, os.path.getsize(layout.blob(image_id))))
    try:
        client.ping()
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            bars = [progress.bar(f"blob {d[7:19]}", size) for d, size in blobs]
            jobs = [pool.submit(_upload, client, layout, d, size, mounts, bar) for (d, size), bar in zip(blobs, bars)]
            for job, bar in zip(jobs, bars):
                bar.finish(job.result())
        media = manifest.get("mediaType") or OCI_MANIFEST
        resp = client.request("PUT", f"manifests/{ref.tag}", {"Content-Type": media}, body=manifest_bytes,
                              ok=(201,), what=f"manifest {image['manifest']}")
        resp.read()
        got = resp.getheader("Docker-Content-Digest", "")
        if got and got != image["manifest"]:
            raise PyociError(f"{ref}: the registry stored the manifest as {got}, not {image['manifest']}")
    finally:
        client.close()
    with layout.records_for_update() as fresh:
        if image_id in fresh["images"]:
            fresh["images"][image_id]["origins"] = sorted(set(fresh["images"][image_id].get("origins", [])) | {here})
    return image["manifest"]
