"""The overlay layer store: OCI images imported as overlay2-style layers, container roots mounted on them.

layout: where things live on disk and the store's locks; digest: content addresses; sources: reading OCI
layouts, OCI archives and `docker save` archives; unpack/pack: layer tars to overlay directories and back;
images: import, list, remove, collect, export, commit; bundles: a container layer and config.json from an
image (the runtime mounts its overlay: pyoci/layer.py), its changes; imageconfig: image config to runtime config; info: what the backing
filesystem and kernel allow.
"""
