"""linux.resources.blockIO → v1 blkio files or v2 io files, choosing the files as runc does.

Proportional weights live in different files per I/O scheduler: v1 has blkio.weight (CFQ, gone from
current kernels) or blkio.bfq.weight (BFQ); v2 has io.bfq.weight (BFQ, the v1 scale 10..1000) or io.weight
(iocost, 1..10000, converted). Leaf weights are a CFQ-only v1 notion: v2 refuses them (limits.V2_MISSING).
"""
from __future__ import annotations

TYPE_CHECKING = False

from ..errors import PyociError

if TYPE_CHECKING:
    from typing import Any

    from .limits import Writer

_V1_THROTTLE = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"))
_V2_THROTTLE = (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops"))


def blkio_to_io_weight(weight: int) -> int:
    """runc's conversion of a blkio weight (10..1000) to io.weight (1..10000)."""
    return 1 + (weight - 10) * 9999 // 990 if weight else 0


def _weight_files(w: "Writer", where: str) -> tuple[str, str]:
    """(whole-cgroup file, per-device file): CFQ's where the kernel has them, else BFQ's."""
    w.base("blkio", where)
    for prefix in ("blkio.", "blkio.bfq."):
        if w.exists("blkio", prefix + "weight"):
            return prefix + "weight", prefix + "weight_device"
    raise PyociError(f"linux.resources.{where}: this kernel has neither blkio.weight nor blkio.bfq.weight "
                     "(no proportional I/O scheduler)")


def v1(blkio: dict[str, Any], w: "Writer") -> None:
    if blkio.get("weight"):
        w("blkio", _weight_files(w, "blockIO.weight")[0], blkio["weight"], "blockIO.weight")
    if blkio.get("leafWeight"):
        w("blkio", "blkio.leaf_weight", blkio["leafWeight"], "blockIO.leafWeight")
    for i, d in enumerate(blkio.get("weightDevice", [])):
        dev, where = f"{d['major']}:{d['minor']}", f"blockIO.weightDevice[{i}]"
        if d.get("weight"):
            w("blkio", _weight_files(w, where + ".weight")[1], f"{dev} {d['weight']}", where + ".weight")
        if d.get("leafWeight"):
            w("blkio", "blkio.leaf_weight_device", f"{dev} {d['leafWeight']}", where + ".leafWeight")
    for key, name in _V1_THROTTLE:
        for i, d in enumerate(blkio.get(key, [])):
            w("blkio", name, f"{d['major']}:{d['minor']} {d['rate']}", f"blockIO.{key}[{i}]")


def v2(blkio: dict[str, Any], w: "Writer") -> None:
    """BFQ when its file is there (per device only on kernels whose io.bfq.weight lists devices, 5.4+),
    else io.weight converted. runc drops per-device weights without BFQ; io.weight takes them too."""
    bfq = w.exists("unified", "io.bfq.weight")
    if blkio.get("weight"):
        if bfq:
            w("unified", "io.bfq.weight", blkio["weight"], "blockIO.weight")
        else:
            w("unified", "io.weight", blkio_to_io_weight(blkio["weight"]), "blockIO.weight")
    bfq_per_device = bfq and not w.read("unified", "io.bfq.weight").isdigit()
    for i, d in enumerate(blkio.get("weightDevice", [])):
        if d.get("weight"):
            dev, where = f"{d['major']}:{d['minor']}", f"blockIO.weightDevice[{i}].weight"
            if bfq_per_device:
                w("unified", "io.bfq.weight", f"{dev} {d['weight']}", where)
            else:
                w("unified", "io.weight", f"{dev} {blkio_to_io_weight(d['weight'])}", where)
    for key, name in _V2_THROTTLE:
        for i, d in enumerate(blkio.get(key, [])):
            w("unified", "io.max", f"{d['major']}:{d['minor']} {name}={d['rate']}", f"blockIO.{key}[{i}]")
