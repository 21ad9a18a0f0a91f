"""The layer store's command line: `pyoci image ...` and `pyoci bundle ...`, a table main.py dispatches to.
Containers made from images are run through the runtime's API (pyoci.container)."""
from __future__ import annotations

import os
import secrets

from .. import jsonio
from ..cmdline import Command, SimpleNamespace, check_format, print_table
from ..errors import PyociError
from .layout import Layout
from .progress import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..container import Runtime


def _limits(a: SimpleNamespace):
    """--max-layer-size (bytes, or with K, M, G, T; 0 for none) and --max-layer-ratio (0 for none)."""
    from .images import Limits

    limits = Limits()
    size, ratio = a.max_layer_size.strip().upper(), a.max_layer_ratio.strip()
    if size:
        scale = 1 << (10 * ("KMGT".index(size[-1]) + 1)) if size[-1:] in ("K", "M", "G", "T") else 1
        number = size.rstrip("KMGTB") if scale > 1 else size
        if not number.isdigit():
            raise PyociError(f"--max-layer-size: {a.max_layer_size!r} is not a size (64G, 512M, 0 for no limit)")
        limits.max_size = int(number) * scale
    if ratio:
        if not ratio.isdigit():
            raise PyociError(f"--max-layer-ratio: {ratio!r} is not a whole number (0 for no limit)")
        limits.max_ratio = int(ratio)
    return limits


LIMIT_FLAGS = {"max-layer-size": "", "max-layer-ratio": ""}
# podman's names for how to reach a registry
REGISTRY_FLAGS = {"tls-verify": "true", "cert-dir": "", "authfile": "", "creds": ""}
PULL_FLAGS = {"platform": "", **REGISTRY_FLAGS, **LIMIT_FLAGS}


def _registry_options(a: SimpleNamespace):
    from .registries import Options

    if a.tls_verify not in ("true", "false"):
        raise PyociError(f"--tls-verify must be true or false, not {a.tls_verify!r}")
    return Options(tls_verify=a.tls_verify == "true", cert_dir=a.cert_dir, authfile=a.authfile, creds=a.creds)


def _pull(a: SimpleNamespace, ref: str) -> str:
    from .progress import Progress
    from .pull import pull

    return pull(Layout(a.store), ref, _registry_options(a), a.platform, Progress(), _limits(a))


def _image_or_pull(a: SimpleNamespace, layout: Layout) -> str:
    """The image a.image names in the store, pulled first if the store has none of that name (podman's
    --pull=missing)."""
    from .images import NoImage, resolve
    from .reference import looks_like_reference

    try:
        return resolve(layout.load(), a.image)
    except NoImage:
        if not looks_like_reference(a.image):
            raise
    return _pull(a, a.image)


def do_pull(a: SimpleNamespace, rt: Runtime) -> int:
    print(_pull(a, a.ref))
    return 0


def do_push(a: SimpleNamespace, rt: Runtime) -> int:
    from .progress import Progress
    from .push import push

    print(push(Layout(a.store), a.image, a.ref, _registry_options(a), Progress()))
    return 0


def do_import(a: SimpleNamespace, rt: Runtime) -> int:
    from .images import import_image
    from .progress import Progress

    for image_id in import_image(Layout(a.store), a.source, a.ref, a.tag, Progress(), _limits(a)):
        print(image_id)
    return 0


def do_images(a: SimpleNamespace, rt: Runtime) -> int:
    check_format(a.format)
    rec = Layout(a.store).load()
    rows = [{"id": i, "tags": img.get("tags", []), "created": img.get("created", ""), "size": img.get("size", 0)}
            for i, img in sorted(rec["images"].items(), key=lambda kv: kv[1].get("imported", ""))]
    if a.quiet:
        print("\n".join(r["id"] for r in rows))
    elif a.format == "json":
        print(jsonio.dumps(rows))
    else:
        table = [("IMAGE ID", "TAG", "CREATED", "SIZE")]
        for r in rows:
            for t in r["tags"] or ["<none>"]:
                table.append((r["id"][7:19], t, r["created"][:19], human_size(r["size"])))
        print_table(table)
    return 0


def do_inspect(a: SimpleNamespace, rt: Runtime) -> int:
    from .images import inspect

    print(jsonio.dumps(inspect(Layout(a.store), a.image), indent=2))
    return 0


def do_tag(a: SimpleNamespace, rt: Runtime) -> int:
    from .images import tag

    tag(Layout(a.store), a.image, a.name)
    return 0


def do_rmi(a: SimpleNamespace, rt: Runtime) -> int:
    """Removes every image it can; one it cannot (in use, unknown) is reported and makes the status 1."""
    from .images import remove

    said, refused = remove(Layout(a.store), a.images, a.force)
    for line in said:
        print(line)
    if refused:
        raise PyociError("; ".join(refused))
    return 0


def do_prune(a: SimpleNamespace, rt: Runtime) -> int:
    from .images import prune

    for line in prune(Layout(a.store)):
        print(line)
    return 0


def _show(fmt: str, rows: list[dict], header: tuple[str, ...], row) -> None:
    """rows as JSON, or as a table of header and row(r) for each."""
    if fmt == "json":
        print(jsonio.dumps(rows))
    else:
        print_table([header] + [row(r) for r in rows])


def do_layers(a: SimpleNamespace, rt: Runtime) -> int:
    from .images import layers

    check_format(a.format)
    _show(a.format, layers(Layout(a.store)), ("LAYER", "KIND", "PARENT", "SIZE", "USED BY"),
          lambda r: (r["id"][:12], r["kind"], r["parent"][:12], human_size(r["size"]), ",".join(r["usedBy"])))
    return 0


def do_export(a: SimpleNamespace, rt: Runtime) -> int:
    from .images import export

    export(Layout(a.store), a.image, a.destination)
    return 0


def do_image_run(a: SimpleNamespace, rt: Runtime) -> int:
    """Image to running container in one line: a bundle under the store, `run` in the foreground, and with
    --rm the container layer and bundle removed after."""
    from ..foreground import run
    from ..state import validate_id
    from . import bundles

    if a.rm and a.detach:
        raise PyociError("--rm and --detach cannot be used together")
    layout = Layout(a.store)
    name = a.name or f"pyoci-{secrets.token_hex(6)}"
    validate_id(name)
    if os.path.exists(rt.store.dir(name)):
        raise PyociError(f"container {name} exists")
    bundle = os.path.join(layout.root, "bundles", name)
    lid = bundles.create(layout, _image_or_pull(a, layout), bundle, a.command_args, a.tty, a.hostname or name,
                         _run_options(a), name)
    try:
        return run(rt, name, bundle, {}, detach=a.detach, keep=False)
    finally:
        if a.rm:
            bundles.remove(layout, lid, layout.load()["bundles"][lid])


def do_bundle_create(a: SimpleNamespace, rt: Runtime) -> int:
    from . import bundles

    layout = Layout(a.store)
    print(bundles.create(layout, _image_or_pull(a, layout), a.bundle, a.command_args, a.tty, a.hostname,
                         _run_options(a)))
    return 0


def _run_options(a: SimpleNamespace):
    from .imageconfig import RunOptions, parse_mount, parse_volume

    return RunOptions(cap_add=a.cap_add, cap_drop=a.cap_drop, privileged=a.privileged, env=a.env, user=a.user,
                      workdir=a.workdir, mounts=[parse_volume(v) for v in a.volume] + [parse_mount(m) for m in a.mount])


# podman run's names for what a container of an image may do and see; and what to pull an image missing
RUN_FLAGS = dict(values={"user": "", "workdir": "", **PULL_FLAGS}, multi=("cap-add", "cap-drop", "env", "mount", "volume"),
                 short={"t": "tty", "e": "env", "u": "user", "w": "workdir", "v": "volume"})


def do_diff(a: SimpleNamespace, rt: Runtime) -> int:
    from . import bundles

    layout = Layout(a.store)
    lid, record = bundles.find(layout, a.bundle, rt)
    for kind, path in bundles.changes(layout, lid, record):
        print(kind, path)
    return 0


def do_commit(a: SimpleNamespace, rt: Runtime) -> int:
    from . import bundles

    layout = Layout(a.store)
    lid, record = bundles.find(layout, a.bundle, rt)
    print(bundles.commit(layout, lid, record, a.tag, a.message))
    return 0


def do_bundle_rm(a: SimpleNamespace, rt: Runtime) -> int:
    from . import bundles

    layout = Layout(a.store)
    lid, record = bundles.find(layout, a.bundle, rt)
    bundles.remove(layout, lid, record)
    return 0


def do_bundles(a: SimpleNamespace, rt: Runtime) -> int:
    from .bundles import listing

    check_format(a.format)
    _show(a.format, listing(Layout(a.store)), ("LAYER", "IMAGE", "CREATED", "BUNDLE"),
          lambda r: (r["layer"][:12], r["image"], r["created"][:19], r["bundle"]))
    return 0


COMMANDS = {
    "image import": Command(do_import, "import an OCI layout dir, OCI archive or docker save archive (every named "
                            "image in it, or those --ref names)", ("source",), values=dict(LIMIT_FLAGS),
                            multi=("tag", "ref"), short={"t": "tag"}),
    "image pull": Command(do_pull, "pull an image from a registry (podman's names and files for registries, "
                          "credentials and certificates)", ("ref",), values=dict(PULL_FLAGS)),
    "image push": Command(do_push, "push a stored image to a registry as registry/repository[:tag]",
                          ("image", "ref"), values=dict(REGISTRY_FLAGS)),
    "image list": Command(do_images, "list stored images", values={"format": "table"}, bools=("quiet",),
                          short={"f": "format", "q": "quiet"}),
    "image inspect": Command(do_inspect, "print an image's record, layers and config as JSON", ("image",)),
    "image tag": Command(do_tag, "give an image another name", ("image", "name")),
    "image rm": Command(do_rmi, "untag or remove images, then collect layers nothing uses", ("images...",),
                        bools=("force",), short={"f": "force"}),
    "image prune": Command(do_prune, "remove layers and blobs no image or bundle uses"),
    "image layers": Command(do_layers, "list layer directories, their users and sizes", values={"format": "table"},
                            short={"f": "format"}),
    "image export": Command(do_export, "write an image as oci:DIR[:REF] or oci-archive:FILE[:REF]",
                            ("image", "destination")),
    "image run": Command(do_image_run, "run a container from an image in the foreground (a bundle under the store; "
                         "pulled first if missing)", ("image", "command-args..."),
                         values={"name": "", "hostname": "", **RUN_FLAGS["values"]},
                         bools=("rm", "tty", "detach", "privileged"), short={**RUN_FLAGS["short"], "d": "detach"},
                         multi=RUN_FLAGS["multi"], optional=1),
    "bundle create": Command(do_bundle_create, "make a bundle from an image: config.json and a container layer "
                             "(pulled first if missing)", ("image", "bundle", "command-args..."),
                             values={"hostname": "pyoci", **RUN_FLAGS["values"]}, bools=("tty", "privileged"),
                             short=dict(RUN_FLAGS["short"]), multi=RUN_FLAGS["multi"], optional=1),
    "bundle diff": Command(do_diff, "list a bundle's changes: A added, C changed, D deleted", ("bundle",)),
    "bundle commit": Command(do_commit, "store a bundle's changes as a new image on its image", ("bundle",),
                             values={"message": ""}, multi=("tag",), short={"t": "tag", "m": "message"}),
    "bundle rm": Command(do_bundle_rm, "remove a bundle's container layer and its config.json", ("bundle",)),
    "bundle list": Command(do_bundles, "list bundles made from images", values={"format": "table"},
                           short={"f": "format"}),
}
