"""process.scheduler, process.ioPriority and linux.memoryPolicy as the kernel numbers them
(uapi linux/sched.h, linux/ioprio.h, linux/mempolicy.h), and the host facts that decide whether one can be
applied here."""
from __future__ import annotations

from . import cpulist
from .files import read_text

# sched_setattr(2) policies. SCHED_ISO was reserved (4) and never implemented: the kernel refuses it.
POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_IDLE": 5,
            "SCHED_DEADLINE": 6}
NOT_IN_LINUX = ("SCHED_ISO",)
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}

# ioprio_set(2): the class in the top bits, the level (0 highest .. 7) below
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13

MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
              "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_STATIC_NODES": 1 << 15}
# how many nodes each mode takes (runc's rule, the kernel's too): none, at least one, or either
MPOL_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
MPOL_SOME_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE")

NODES_ONLINE = "/sys/devices/system/node/online"


def ioprio(klass: str, level: int) -> int:
    return IOPRIO_CLASSES[klass] << IOPRIO_CLASS_SHIFT | level


def host_nodes(path: str = NODES_ONLINE) -> list[int]:
    """The NUMA nodes online on this host; none where the kernel has no NUMA (and no memory policies)."""
    try:
        return cpulist.parse(read_text(path))
    except (OSError, ValueError):
        return []
