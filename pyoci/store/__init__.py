"""The overlay layer store: OCI images imported as overlay2-style layers, container roots mounted on them.

layout: where things live on disk and the store's locks; digest: content addresses; sources: reading OCI
layouts, OCI archives and `docker save` archives; unpack/pack: layer tars to overlay directories and back;
images: import, list, remove, collect, export, commit; bundles: a container layer and config.json from an
image, its overlay mount, its changes; imageconfig: image config to runtime config; info: what the backing
filesystem and kernel allow.
"""

# In a bundle made from an image: its container layer, which `create` mounts as the root.
ROOTFS_ANNOTATION = "org.pyoci.rootfs.layer"
