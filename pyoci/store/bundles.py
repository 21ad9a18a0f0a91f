"""Bundles made from images: a container layer (diff, work, merged) above the image's layers, a config.json
whose root is the merged directory, and the annotation that tells `create` to mount the overlay there.

The overlay is mounted by the runtime when the container is created and taken down by `delete`, so a bundle
on disk is only files; its changes can be listed and committed as a new image at any time.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil

from ..errors import PyociError
from . import digest, images, info
from .layout import Layout, short_id
from .progress import Progress
from .view import is_whiteout, read_file, visible

from . import ROOTFS_ANNOTATION


def _config_path(bundle: str) -> str:
    return os.path.join(bundle, "config.json")


def create(layout: Layout, ref: str, bundle: str, args: list[str], tty: bool, hostname: str) -> str:
    """Makes the container layer and writes bundle/config.json; returns the layer id."""
    from .imageconfig import runtime_config

    info.require_overlay(layout)
    bundle = os.path.abspath(bundle)
    if os.path.exists(_config_path(bundle)):
        raise PyociError(f"{_config_path(bundle)} exists: choose an empty bundle directory")
    with layout.lock(exclusive=False):
        rec = layout.load()
        image_id = images.resolve(rec, ref)
        lower_ids = rec["images"][image_id]["layers"]
        diffs = [layout.layer(lid, "diff") for lid in reversed(lower_ids)]
        lid = secrets.token_hex(32)
        cfg = runtime_config(images.image_config(layout, image_id), lambda rel: read_file(diffs, rel),
                             layout.layer(lid, "merged"), args, tty, hostname)
        cfg["annotations"][ROOTFS_ANNOTATION] = layout.layer(lid)
        made_bundle = not os.path.isdir(bundle)
        os.makedirs(bundle, exist_ok=True)
        try:
            for d in ("diff", "work", "merged"):
                os.makedirs(layout.layer(lid, d), mode=0o755 if d != "work" else 0o700)
            with open(layout.layer(lid, "link"), "w") as f:
                f.write(short_id(lid))
            with open(layout.layer(lid, "lower"), "w") as f:
                f.write(":".join(f"l/{short_id(x)}" for x in reversed(lower_ids)))
            os.symlink(f"../{lid}/diff", os.path.join(layout.links, short_id(lid)))
            with open(_config_path(bundle), "w") as f:
                json.dump(cfg, f, indent=2)
            with layout.records_for_update() as fresh:
                fresh["bundles"][lid] = {"image": image_id, "bundle": bundle, "layers": lower_ids,
                                         "created": images.now()}
        except BaseException:
            _remove_layer(layout, lid)
            if made_bundle:
                shutil.rmtree(bundle, ignore_errors=True)
            else:
                try:
                    os.unlink(_config_path(bundle))
                except FileNotFoundError:
                    pass
            raise
    return lid


def _remove_layer(layout: Layout, lid: str) -> None:
    try:
        os.unlink(os.path.join(layout.links, short_id(lid)))
    except FileNotFoundError:
        pass
    shutil.rmtree(layout.layer(lid), ignore_errors=True)


def mount(layer_dir: str) -> str:
    """Mounts the container layer's overlay on its merged dir; returns that dir. lowerdir names the short
    links relative to the store's overlay2 dir (the cwd for the call), as Docker's overlay2 does."""
    from ..linux.shim import mount as mount_fs

    layer_dir = os.path.realpath(layer_dir)
    store_dir, lid = os.path.split(layer_dir)
    try:
        with open(os.path.join(layer_dir, "lower")) as f:
            lower = f.read().strip()
    except OSError as exc:
        raise PyociError(f"annotations[{ROOTFS_ANNOTATION}]: {layer_dir} is not a pyoci container layer",
                         exc.errno) from None
    merged = os.path.join(layer_dir, "merged")
    data = f"lowerdir={lower},upperdir={lid}/diff,workdir={lid}/work,index=off"
    cwd = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(store_dir)
        mount_fs("overlay", merged, "overlay", data)
    finally:
        os.fchdir(cwd)
        os.close(cwd)
    return merged


def find(layout: Layout, what: str, runtime_store) -> tuple[str, dict]:
    """A bundle's container layer from its directory, its layer id, its `image run` name, or a container
    made from it."""
    rec = layout.load()
    if what in rec["bundles"]:
        return what, rec["bundles"][what]
    named = os.path.join(layout.root, "bundles", what)  # a bundle `image run --name` made
    bundle = os.path.abspath(what) if os.path.isdir(what) else named if os.path.isdir(named) else None
    if bundle is None:
        try:
            bundle = runtime_store.load(what).bundle
        except PyociError:
            raise PyociError(f"{what!r} is neither a bundle directory, a container layer nor a container") from None
    for lid, b in rec["bundles"].items():
        if b.get("bundle") == bundle:
            return lid, b
    raise PyociError(f"{bundle} is not a bundle made from a pyoci image")


def changes(layout: Layout, lid: str, record: dict) -> list[tuple[str, str]]:
    """(A|C|D, /path) for each change in the container layer, as `docker diff` lists them."""
    from .pack import walk

    upper = layout.layer(lid, "diff")
    lowers = [layout.layer(x, "diff") for x in reversed(record.get("layers", []))]
    out = []
    for rel, st in walk(upper):
        if is_whiteout(st):
            out.append(("D", "/" + rel))
        elif visible(lowers, rel) is not None:
            out.append(("C", "/" + rel))
        else:
            out.append(("A", "/" + rel))
    return out


def commit(layout: Layout, lid: str, record: dict, tags: list[str], comment: str) -> str:
    """The container layer as a new gzip'ed OCI layer on its image; returns the new image's id."""
    import gzip

    from .pack import pack
    from .sources import Blob

    info.require_overlay(layout)
    with layout.lock(exclusive=False):
        base_id = record["image"]
        rec = layout.load()
        if base_id not in rec["images"]:
            raise PyociError(f"the bundle's image {base_id} was removed from the store")
        staging = layout.staging("commit-")
        try:
            blob = os.path.join(staging, "layer.tar.gz")
            with open(blob, "wb") as raw:
                outer = digest.HashingWriter(raw)
                with gzip.GzipFile(fileobj=outer, mode="wb", mtime=0) as gz:
                    inner = digest.HashingWriter(gz)
                    pack(layout.layer(lid, "diff"), inner)
            config = images.image_config(layout, base_id)
            config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(inner.digest())
            created = images.now()
            config["created"] = created
            config.setdefault("history", []).append({"created": created, "created_by": "pyoci bundle commit",
                                                     "comment": comment} if comment else
                                                    {"created": created, "created_by": "pyoci bundle commit"})
            config_bytes = json.dumps(config).encode()
            base_manifest = json.loads(images.read_blob(layout, rec["images"][base_id]["manifest"]))
            new_layer = {"mediaType": images.LAYER_TYPES["gzip"], "digest": outer.digest(), "size": outer.size}
            manifest = json.dumps({"schemaVersion": 2, "mediaType": images.OCI_MANIFEST,
                                   "config": {"mediaType": images.OCI_CONFIG, "digest": digest.of(config_bytes),
                                              "size": len(config_bytes)},
                                   "layers": base_manifest.get("layers", []) + [new_layer]}).encode()
            src = images.blob_source(layout, base_id, [Blob(blob, outer.digest(), new_layer["mediaType"],
                                                            outer.size)], config_bytes, manifest)
            return images.store_image(layout, src, lambda b: open(b.path, "rb"), tags, Progress(False))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def remove(layout: Layout, lid: str, record: dict) -> None:
    """Removes the container layer and the config.json pyoci wrote (the directory too if left empty)."""
    from ..linux.mountinfo import mount_points

    merged = layout.layer(lid, "merged")
    if merged in mount_points():
        raise PyociError(f"{record.get('bundle')}: its root is mounted: delete the container first")
    with layout.records_for_update() as rec:
        rec["bundles"].pop(lid, None)
    _remove_layer(layout, lid)
    bundle = record.get("bundle", "")
    if bundle:
        try:
            os.unlink(_config_path(bundle))
            os.rmdir(bundle)
        except OSError:
            pass


def listing(layout: Layout) -> list[dict]:
    rec = layout.load()
    names = {i: (img.get("tags") or [i[7:19]])[0] for i, img in rec["images"].items()}
    return [{"layer": lid, "bundle": b.get("bundle", ""), "image": names.get(b.get("image"), b.get("image", "")),
             "created": b.get("created", "")} for lid, b in sorted(rec["bundles"].items())]
