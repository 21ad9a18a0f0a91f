"""linux.resources → cgroup files, for v1 and v2 (with runc's v1→v2 conversions)."""
from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway

from ..errors import PyociError

if TYPE_CHECKING:
    from typing import Any, Callable

    from . import Cgroup


def shares_to_weight(shares: int) -> int:
    """runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000)."""
    return 1 + ((shares - 2) * 9999) // 262142 if shares else 0


class Writer:
    """Writes one value into a cgroup file, turning a failure into an error naming the resource."""

    def __init__(self, cg: "Cgroup") -> None:
        self.cg = cg

    def __call__(self, controller: str, name: str, value: Any, where: str) -> None:
        base = self.cg.path(controller)
        if base is None:
            raise PyociError(f"linux.resources.{where}: the {controller} controller is not available")
        path = os.path.join(base, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(value).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise PyociError(f"linux.resources.{where}: write {value} to {path}", exc.errno) from None


def _cpuset_and_pids(res: dict[str, Any], w: Callable[..., None], cpuset: str, pids: str) -> None:
    """The files are named alike on v1 and v2; only the hierarchy they live in differs."""
    cpu = res.get("cpu", {})
    for key in ("cpus", "mems"):
        if cpu.get(key):
            w(cpuset, f"cpuset.{key}", cpu[key], f"cpu.{key}")
    if "pids" in res and "limit" in res["pids"]:
        limit = res["pids"]["limit"]
        w(pids, "pids.max", "max" if limit <= 0 else limit, "pids.limit")


def _v1_memory(mem: dict[str, Any], w: Callable[..., None]) -> None:
    """memsw (memory+swap) may never be below the memory limit: when raising both, memsw goes first."""
    limit = ("memory", "memory.limit_in_bytes", mem.get("limit"), "memory.limit")
    swap = ("memory", "memory.memsw.limit_in_bytes", mem.get("swap"), "memory.swap")
    if "limit" in mem and "swap" in mem:
        try:
            w(*limit)
            w(*swap)
        except PyociError:
            w(*swap)
            w(*limit)
    elif "limit" in mem:
        w(*limit)
    elif "swap" in mem:
        w(*swap)
    for key, name in (("reservation", "memory.soft_limit_in_bytes"), ("kernel", "memory.kmem.limit_in_bytes"),
                      ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"), ("swappiness", "memory.swappiness")):
        if key in mem:
            w("memory", name, mem[key], f"memory.{key}")


def _v1(res: dict[str, Any], w: Callable[..., None], cg: "Cgroup", devices: bool) -> None:
    mem = res.get("memory", {})
    _v1_memory(mem, w)
    if mem.get("disableOOMKiller"):
        w("memory", "memory.oom_control", 1, "memory.disableOOMKiller")
    cpu = res.get("cpu", {})
    for key, name in (("shares", "cpu.shares"), ("period", "cpu.cfs_period_us"), ("quota", "cpu.cfs_quota_us"),
                      ("burst", "cpu.cfs_burst_us"), ("realtimePeriod", "cpu.rt_period_us"),
                      ("realtimeRuntime", "cpu.rt_runtime_us"), ("idle", "cpu.idle")):
        if key in cpu:
            w("cpu", name, cpu[key], f"cpu.{key}")
    _cpuset_and_pids(res, w, "cpuset", "pids")
    blkio = res.get("blockIO", {})
    for key, name in (("weight", "blkio.weight"), ("leafWeight", "blkio.leaf_weight")):
        if key in blkio:
            w("blkio", name, blkio[key], f"blockIO.{key}")
    for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for i, d in enumerate(blkio.get(key, [])):
            w("blkio", name, f"{d['major']}:{d['minor']} {d['rate']}", f"blockIO.{key}[{i}]")
    network = res.get("network", {})
    if "classID" in network:
        w("net_cls", "net_cls.classid", network["classID"], "network.classID")
    for i, prio in enumerate(network.get("priorities", [])):
        w("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}", f"network.priorities[{i}]")
    _hugetlb(res, w, cg)
    _rdma(res, w, cg)
    if devices and cg.path("devices") is not None:
        from .devices import DEFAULT_RULES, v1_line

        w("devices", "devices.deny", "a", "devices")
        for i, rule in enumerate(res.get("devices", [])):
            w("devices", "devices.allow" if rule.get("allow") else "devices.deny", v1_line(rule), f"devices[{i}]")
        for rule in DEFAULT_RULES:
            w("devices", "devices.allow", v1_line(rule), "devices")


def _hugetlb(res: dict[str, Any], w: Callable[..., None], cg: "Cgroup") -> None:
    """v1 hugetlb where it is mounted; else the unified hierarchy's (hybrid hosts keep it there)."""
    for i, h in enumerate(res.get("hugepageLimits", [])):
        size = h["pageSize"].removesuffix("B")
        if cg.path("hugetlb") is not None:
            w("hugetlb", f"hugetlb.{size}B.limit_in_bytes", h["limit"], f"hugepageLimits[{i}]")
        else:
            w("unified", f"hugetlb.{size}B.max", h["limit"], f"hugepageLimits[{i}]")


def _rdma(res: dict[str, Any], w: Callable[..., None], cg: "Cgroup") -> None:
    """rdma.max, alike on v1 and v2: in the v1 rdma hierarchy where it is mounted, else the unified one."""
    for device, limit in res.get("rdma", {}).items():
        where = f"rdma.{device}"
        controller = "rdma" if cg.path("rdma") is not None else "unified"
        v2 = cg.path("unified")
        if controller == "unified" and not (v2 and os.path.exists(os.path.join(v2, "rdma.max"))):
            raise PyociError(f"linux.resources.{where}: the rdma controller is not available")
        handles, objects = (limit.get(k) for k in ("hcaHandles", "hcaObjects"))
        value = f"{device} hca_handle={'max' if handles is None else handles} " \
                f"hca_object={'max' if objects is None else objects}"
        w(controller, "rdma.max", value, where)


_IO_MAX = (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
           ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops"))


def _v2(res: dict[str, Any], w: Callable[..., None], cg: "Cgroup") -> None:
    mem = res.get("memory", {})
    if "limit" in mem:
        w("unified", "memory.max", "max" if mem["limit"] < 0 else mem["limit"], "memory.limit")
    if "reservation" in mem:
        w("unified", "memory.low", max(mem["reservation"], 0), "memory.reservation")
    if "swap" in mem:
        swap = mem["swap"]
        # v1's memsw is memory+swap; v2's swap.max is swap alone
        value = "max" if swap < 0 else max(swap - mem.get("limit", 0), 0) if mem.get("limit", -1) >= 0 else swap
        w("unified", "memory.swap.max", value, "memory.swap")
    cpu = res.get("cpu", {})
    if cpu.get("shares"):
        w("unified", "cpu.weight", shares_to_weight(cpu["shares"]), "cpu.shares")
    if "quota" in cpu or "period" in cpu:
        quota = cpu.get("quota", -1)
        w("unified", "cpu.max", f"{'max' if quota is None or quota < 0 else quota} {cpu.get('period') or 100000}",
          "cpu.quota")
    if "burst" in cpu:
        w("unified", "cpu.max.burst", cpu["burst"], "cpu.burst")
    if "idle" in cpu:
        w("unified", "cpu.idle", cpu["idle"], "cpu.idle")
    _cpuset_and_pids(res, w, "unified", "unified")
    blkio = res.get("blockIO", {})
    if "weight" in blkio:
        w("unified", "io.weight", f"default {blkio['weight']}", "blockIO.weight")
    for key, name in _IO_MAX:
        for i, d in enumerate(blkio.get(key, [])):
            w("unified", "io.max", f"{d['major']}:{d['minor']} {name}={d['rate']}", f"blockIO.{key}[{i}]")
    _hugetlb(res, w, cg)
    _rdma(res, w, cg)


def _unified(res: dict[str, Any], w: Callable[..., None]) -> None:
    for key, value in res.get("unified", {}).items():
        if "/" in key or key.startswith("."):
            raise PyociError(f"linux.resources.unified.{key}: not a cgroup file name")
        w("unified", key, value, f"unified.{key}")


def apply(cg: "Cgroup", res: dict[str, Any], v2_only: bool, devices: bool = True) -> None:
    """Writes res; `devices` (create) sets the device rules, which `update` leaves as they are."""
    w = Writer(cg)
    if v2_only:
        _v2(res, w, cg)
    else:
        _v1(res, w, cg, devices)
    _unified(res, w)
