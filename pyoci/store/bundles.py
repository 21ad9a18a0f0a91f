"""Bundles made from images: a container layer (diff, work, merged) above the image's layers, a config.json
whose root is the merged directory, and the annotation that tells `create` to mount the overlay there.

The overlay is mounted by the runtime when the container is created (pyoci/layer.py) and taken down by
`delete`, so a bundle on disk is only files; its changes can be listed and committed as a new image at any time.
"""
from __future__ import annotations

import os

from ..errors import PyociError
from ..layer import ROOTFS_ANNOTATION
from .view import is_whiteout, read_file, visible

TYPE_CHECKING = False  # typing costs an import; the annotations are strings
if TYPE_CHECKING:
    from ..container import Runtime
    from .layout import Layout


# Files of the bundle that pyoci writes, removed with it: its config and the /etc files it binds in
BUNDLE_FILES = ("config.json", "hostname", "hosts", "resolv.conf")
LOCALHOST = ("127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n"
             "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n")
PUBLIC_DNS = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def _config_path(bundle: str) -> str:
    return os.path.join(bundle, "config.json")


def etc_files(bundle: str, hostname: str, name: str, image_hosts: bytes | None) -> list[dict]:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf as podman provides them, written in the bundle and bound
    over the image's: the hostname; the image's hosts file (localhost's lines where it has none) and a line
    for the container's own name; the host's resolv.conf without loopback name servers, which mean nothing
    in the container's network namespace (podman's public fallbacks where none is left)."""
    try:
        with open("/etc/resolv.conf") as f:
            resolv = [line for line in f if not (line.split()[:1] == ["nameserver"] and len(line.split()) > 1
                                                 and line.split()[1].startswith(("127.", "::1")))]
    except OSError:
        resolv = []
    if not any(line.startswith("nameserver") for line in resolv):
        resolv.append(PUBLIC_DNS)
    hosts = (image_hosts or b"").decode(errors="replace") or LOCALHOST
    names = " ".join(dict.fromkeys(n for n in (hostname, name) if n))
    contents = {"hostname": hostname + "\n", "hosts": hosts.rstrip("\n") + f"\n127.0.1.1\t{names}\n",
                "resolv.conf": "".join(resolv)}
    mounts = []
    for file, text in contents.items():
        with open(os.path.join(bundle, file), "w") as f:
            f.write(text)
        mounts.append({"destination": f"/etc/{file}", "type": "bind", "source": os.path.join(bundle, file),
                       "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
    return mounts


def create(layout: Layout, image_id: str, bundle: str, args: list[str], tty: bool, hostname: str,
           opts=None, name: str = "") -> str:
    """Makes the container layer and writes bundle/config.json; returns the layer id."""
    from .. import jsonio
    import secrets
    import shutil

    from . import images, info
    from .imageconfig import runtime_config
    from .layout import short_id

    info.require_overlay(layout)
    bundle = os.path.abspath(bundle)
    if os.path.exists(_config_path(bundle)):
        raise PyociError(f"{_config_path(bundle)} exists: choose an empty bundle directory")
    with layout.lock(exclusive=False):
        rec = layout.load()
        image_id = images.resolve(rec, image_id)
        lower_ids = rec["images"][image_id]["layers"]
        diffs = [layout.layer(lid, "diff") for lid in reversed(lower_ids)]
        lid = secrets.token_hex(32)
        cfg = runtime_config(images.image_config(layout, image_id), lambda rel: read_file(diffs, rel),
                             layout.layer(lid, "merged"), args, tty, hostname, opts)
        cfg["annotations"][ROOTFS_ANNOTATION] = layout.layer(lid)
        made_bundle = not os.path.isdir(bundle)
        os.makedirs(bundle, exist_ok=True)
        init = f"{lid}-init"
        try:
            # the user's mounts last: a -v over /etc/hosts wins, as in podman
            cfg["mounts"] += etc_files(bundle, hostname, name, read_file(diffs, "etc/hosts")) + \
                (opts.mounts if opts else [])
            lower_ids = lower_ids + ([init] if _init_layer(layout, init, diffs) else [])
            for d in ("diff", "work", "merged"):
                os.makedirs(layout.layer(lid, d), mode=0o755 if d != "work" else 0o700)
            _link(layout, lid)
            with open(layout.layer(lid, "lower"), "w") as f:
                f.write(":".join(f"l/{short_id(x)}" for x in reversed(lower_ids)))
            with open(_config_path(bundle), "w") as f:
                jsonio.dump(cfg, f, indent=2)
            with layout.records_for_update() as fresh:
                fresh["bundles"][lid] = {"image": image_id, "bundle": bundle, "layers": lower_ids,
                                         "created": images.now()}
        except BaseException:
            _remove_layer(layout, lid)
            if made_bundle:
                shutil.rmtree(bundle, ignore_errors=True)
            else:
                _remove_files(bundle)
            raise
    return lid


def _link(layout: Layout, lid: str) -> None:
    from .layout import short_id

    with open(layout.layer(lid, "link"), "w") as f:
        f.write(short_id(lid))
    os.symlink(f"../{lid}/diff", os.path.join(layout.links, short_id(lid)))


def _init_layer(layout: Layout, init: str, diffs: list[str]) -> bool:
    """Docker's init layer: the mount points of the /etc files the image lacks, in a layer of the bundle's
    own between the image and the container layer, so that they are neither a change of the container
    (diff, commit) nor made by the runtime in the image's view. False if the image has all three."""
    missing = [f for f in ("hostname", "hosts", "resolv.conf") if visible(diffs, f"etc/{f}") is None]
    if not missing:
        return False
    etc = layout.layer(init, "diff", "etc")
    os.makedirs(etc, mode=0o755)
    below = visible(diffs, "etc")
    if below is not None and os.path.isdir(below) and not os.path.islink(below):
        st = os.lstat(below)
        os.chown(etc, st.st_uid, st.st_gid)
        os.chmod(etc, st.st_mode & 0o7777)
        os.utime(etc, ns=(st.st_atime_ns, st.st_mtime_ns))
    for f in missing:
        os.close(os.open(os.path.join(etc, f), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    _link(layout, init)
    return True


def _remove_layer(layout: Layout, lid: str) -> None:
    import shutil

    from .layout import short_id

    for layer in (lid, f"{lid}-init"):
        try:
            os.unlink(os.path.join(layout.links, short_id(layer)))
        except FileNotFoundError:
            pass
        shutil.rmtree(layout.layer(layer), ignore_errors=True)


def find(layout: Layout, what: str, runtime: Runtime) -> tuple[str, dict]:
    """A bundle's container layer from its directory, its layer id, its `image run` name, or a container
    made from it."""
    rec = layout.load()
    if what in rec["bundles"]:
        return what, rec["bundles"][what]
    named = os.path.join(layout.root, "bundles", what)  # a bundle `image run --name` made
    bundle = os.path.abspath(what) if os.path.isdir(what) else named if os.path.isdir(named) else None
    if bundle is None:
        try:
            bundle = runtime.get(what).bundle
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
    from .. import jsonio
    import shutil

    from . import digest, images, info
    from .pack import pack
    from .progress import Progress
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
            config_bytes = jsonio.dumps(config).encode()
            base_manifest = jsonio.loads(images.read_blob(layout, rec["images"][base_id]["manifest"]))
            new_layer = {"mediaType": images.LAYER_TYPES["gzip"], "digest": outer.digest(), "size": outer.size}
            manifest = jsonio.dumps({"schemaVersion": 2, "mediaType": images.OCI_MANIFEST,
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
        _remove_files(bundle)
        try:
            os.rmdir(bundle)
        except OSError:
            pass


def _remove_files(bundle: str) -> None:
    for name in BUNDLE_FILES:
        try:
            os.unlink(os.path.join(bundle, name))
        except FileNotFoundError:
            pass


def listing(layout: Layout) -> list[dict]:
    rec = layout.load()
    names = {i: (img.get("tags") or [i[7:19]])[0] for i, img in rec["images"].items()}
    return [{"layer": lid, "bundle": b.get("bundle", ""), "image": names.get(b.get("image"), b.get("image", "")),
             "created": b.get("created", "")} for lid, b in sorted(rec["bundles"].items())]
