"""The runtime's one interface to the layer store (pyoci/store): a bundle whose config carries
ROOTFS_ANNOTATION names a container layer in overlay2's layout (`lower` lists the short links of the image's
layers, `diff` and `work` are the container's own); create mounts that overlay on root.path, and delete
takes it down with the container's other host mounts.
"""
from __future__ import annotations


from .errors import ConfigError, PyociError
from .linux import fs
from .linux.files import read_text

ROOTFS_ANNOTATION = "org.pyoci.rootfs.layer"
WHERE = f"annotations[{ROOTFS_ANNOTATION}]"


def mount(layer_dir: str, rootfs: str, mounted_before: int) -> None:
    """The container layer's overlay on rootfs, which must be the layer's merged dir. lowerdir names the short
    links relative to the store's overlay2 dir, as Docker's overlay2 does: 128 layers fit one page of
    mount data."""
    from .linux.shim import mount_from

    layer_dir = fs.realpath(layer_dir)
    if f"{layer_dir}/merged" != rootfs:
        raise ConfigError(f"root.path must be the layer's merged directory {layer_dir}/merged",
                          path=WHERE)
    if mounted_before:
        raise PyociError(f"{rootfs} is mounted already: a container of this bundle exists")
    store_dir, _, lid = layer_dir.rpartition("/")
    try:
        lower = read_text(f"{layer_dir}/lower").strip()
    except OSError as exc:
        raise ConfigError(f"{layer_dir} is not a pyoci container layer: {exc.strerror}", path=WHERE) from None
    data = f"lowerdir={lower},upperdir={lid}/diff,workdir={lid}/work,index=off"
    mount_from(store_dir, "overlay", rootfs, "overlay", data)
