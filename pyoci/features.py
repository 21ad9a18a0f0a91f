"""`pyoci features`: what this build and this host support, per the runtime-spec features document."""
from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

from . import OCI_VERSION
from .linux.caps import CAPABILITIES
from .linux.mountopts import FLAGS as MOUNT_FLAGS, IDMAP, PROPAGATION, RECURSIVE
from .linux.sched import MPOL_FLAGS, MPOL_MODES
from .linux.seccomp import ACTIONS, FLAGS, OPS
from .spec import HOOK_KINDS, NAMESPACE_TYPES


def features() -> dict[str, Any]:
    from .cgroups import is_v2_host

    v2 = is_v2_host()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted(set(MOUNT_FLAGS) | set(PROPAGATION) | set(RECURSIVE) | set(IDMAP)),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": not v2, "v2": v2 or os.path.isdir("/sys/fs/cgroup/unified"), "systemd": False,
                       "systemdUser": False, "rdma": True},
            "seccomp": {"enabled": True, "actions": sorted(ACTIONS),
                        "operators": sorted(OPS), "knownFlags": sorted(FLAGS), "supportedFlags": sorted(FLAGS)},
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": _intel_rdt(),
            "mountExtensions": {"idmap": {"enabled": _kernel_at_least(5, 12)}},
            "netDevices": {"enabled": True},
            "memoryPolicy": {"modes": sorted(MPOL_MODES), "flags": sorted(MPOL_FLAGS)},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.version": OCI_VERSION},
    }


def _intel_rdt() -> dict[str, bool]:
    """Applied where resctrl is mounted (refused elsewhere); monitoring where it has L3_MON."""
    from .linux import resctrl

    root = resctrl.mountpoint()
    return {"enabled": root is not None, "schemata": root is not None,
            "monitoring": root is not None and resctrl.monitoring(root)}


def _kernel_at_least(major: int, minor: int) -> bool:
    """mount_setattr(MOUNT_ATTR_IDMAP) came with Linux 5.12 (whether a filesystem allows it is per mount)."""
    release = os.uname().release.split(".")
    try:
        return (int(release[0]), int("".join(c for c in release[1] if c.isdigit()) or 0)) >= (major, minor)
    except (IndexError, ValueError):
        return False
