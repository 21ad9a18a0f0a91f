"""`pyoci features`: what this build and this host support, per the runtime-spec features document."""
from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

from . import OCI_VERSION
from .linux import lsm
from .linux.caps import CAPABILITIES
from .linux.files import read_text
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
                       "systemdUser": False, "rdma": _rdma()},
            "seccomp": {"enabled": True, "actions": sorted(ACTIONS),
                        "operators": sorted(OPS), "knownFlags": sorted(FLAGS), "supportedFlags": sorted(FLAGS)},
            # what this host applies: a profile or label is refused where its LSM is off (pyoci/linux/lsm.py)
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": _intel_rdt(),
            "mountExtensions": {"idmap": {"enabled": _kernel_at_least(5, 12)}},
            "netDevices": {"enabled": True},
            "memoryPolicy": _memory_policy(),
        },
        "annotations": {"org.opencontainers.runtime-spec.features.version": OCI_VERSION},
    }


def _memory_policy() -> dict[str, list[str]]:
    """Applied where the kernel has NUMA memory policies (refused elsewhere)."""
    from .linux.sched import host_nodes

    numa = bool(host_nodes())
    return {"modes": sorted(MPOL_MODES) if numa else [], "flags": sorted(MPOL_FLAGS) if numa else []}


def _rdma() -> bool:
    """linux.resources.rdma is applied where an rdma controller is (v1, or v2's rdma.max), refused elsewhere."""
    from .cgroups.make import hierarchies

    for h in hierarchies():
        if "rdma" in h.controllers:
            return True
        if h.v2:
            try:
                if "rdma" in read_text(os.path.join(h.mountpoint, "cgroup.controllers")).split():
                    return True
            except OSError:
                continue
    return False


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
