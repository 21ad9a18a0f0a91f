"""linux.resources → cgroup files, for v1 and v2 (with runc's v1→v2 conversions)."""
from __future__ import annotations

import posix

TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway

from ..errors import EBUSY, EINVAL, PyociError
from ..linux import fs
from . import read_value

if TYPE_CHECKING:
    from typing import Any, Callable

    from . import Cgroup


def shares_to_weight(shares: int) -> int:
    """runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000)."""
    return 1 + ((shares - 2) * 9999) // 262142 if shares else 0


class Writer:
    """Writes values into cgroup files, turning a failure into an error naming the resource."""

    def __init__(self, cg: "Cgroup", warn: Callable[[str], None] | None = None) -> None:
        self.cg = cg
        self.warn = warn or (lambda text: None)

    def base(self, controller: str, where: str) -> str:
        base = self.cg.path(controller)
        if base is None:
            raise PyociError(f"linux.resources.{where}: the {controller} controller is not available")
        return base

    def exists(self, controller: str, name: str) -> bool:
        base = self.cg.path(controller)
        return base is not None and fs.exists(f"{base}/{name}")

    def read(self, controller: str, name: str) -> str:
        return read_value(self.cg.path(controller), name)

    def __call__(self, controller: str, name: str, value: Any, where: str) -> None:
        self.lines(controller, [(name, str(value), where)])

    def lines(self, controller: str, lines: list[tuple[str, str, str]]) -> None:
        """Writes each (file, value, where) in order, a write(2) each, as v1's devices files take one rule per
        write; a run of them to one file through one open of it (the kernel's open of a cgroup file costs
        ~30 us, and a create writes a dozen device rules). A failure names the resource."""
        fd, opened = -1, ""
        try:
            for name, value, where in lines:
                path = f"{self.base(controller, where)}/{name}"
                if name != opened:
                    if fd >= 0:
                        posix.close(fd)
                        fd = -1
                    fd, opened = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC), name
                posix.write(fd, value.encode())
        except OSError as exc:
            raise PyociError(f"linux.resources.{where}: write {value} to {path}", exc.errno) from None
        finally:
            if fd >= 0:
                posix.close(fd)


def write_in_order(w: Writer, first: list[tuple[Any, ...]], last: tuple[Any, ...] | None) -> None:
    """Writes `first`, then `last`. Some values are checked against each other (a cfs period or burst
    against the quota, the rt period against the rt runtime): one the kernel refuses (EINVAL) because
    the old `last` does not fit it yet is written again once the new `last` is in, as runc does."""
    again = []
    for args in first:
        try:
            w(*args)
        except PyociError as exc:
            if exc.errno != EINVAL or last is None:
                raise
            again.append(args)
    if last is not None:
        w(*last)
    for args in again:
        w(*args)


def _cpuset_and_pids(res: dict[str, Any], w: Writer, cpuset: str, pids: str) -> None:
    """The files are named alike on v1 and v2; only the hierarchy they live in differs."""
    cpu = res.get("cpu", {})
    for key in ("cpus", "mems"):
        if cpu.get(key):
            w(cpuset, f"cpuset.{key}", cpu[key], f"cpu.{key}")
    if "pids" in res and "limit" in res["pids"]:
        limit = res["pids"]["limit"]
        w(pids, "pids.max", "max" if limit <= 0 else limit, "pids.limit")


def _v1_memory_limit(w: Writer, value: Any) -> None:
    """The kernel refuses (EBUSY) a limit below what the cgroup uses now: say how much that is, as runc."""
    try:
        w("memory", "memory.limit_in_bytes", value, "memory.limit")
    except PyociError as exc:
        if exc.errno != EBUSY:
            raise
        usage, peak = (w.read("memory", f"memory.{p}usage_in_bytes") for p in ("", "max_"))
        raise PyociError(f"linux.resources.memory.limit: {value} is below the current usage {usage} "
                         f"(peak {peak})", EBUSY) from None


def _v1_memory(mem: dict[str, Any], w: Writer) -> None:
    """memsw (memory+swap) may never be below the memory limit: when raising both, memsw goes first. An
    unlimited memory limit with swap unset makes memory+swap unlimited too (else the old memsw limit would
    refuse it), as runc does. Kernel memory limits are written where the kernel still has the files (runc
    ignores them always), and refused where it has not (unlimited, -1, asks for nothing)."""
    _check_usage(mem, w, False)
    if mem.get("limit") == -1 and "swap" not in mem and w.exists("memory", "memory.memsw.limit_in_bytes"):
        mem = {**mem, "swap": -1}
    swap = ("memory", "memory.memsw.limit_in_bytes", mem.get("swap"), "memory.swap")
    if "limit" in mem and "swap" in mem:
        try:
            _v1_memory_limit(w, mem["limit"])
            w(*swap)
        except PyociError:
            w(*swap)
            _v1_memory_limit(w, mem["limit"])
    elif "limit" in mem:
        _v1_memory_limit(w, mem["limit"])
    elif "swap" in mem:
        w(*swap)
    if "reservation" in mem:
        w("memory", "memory.soft_limit_in_bytes", mem["reservation"], "memory.reservation")
    for key, name in (("kernel", "memory.kmem.limit_in_bytes"), ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
        if key in mem and w.exists("memory", name):
            w("memory", name, mem[key], f"memory.{key}")
            kept = w.read("memory", name)
            if mem[key] > 0 and kept != str(mem[key]):
                # Linux 6.x takes memory.kmem.limit_in_bytes and discards it: said, not silent (a refusal would
                # fail every config that still sets it, runtime-tools' memory tests among them)
                w.warn(f"linux.resources.memory.{key}: this kernel discards the limit ({name} stays {kept})")
        elif mem.get(key, -1) != -1:
            raise PyociError(f"linux.resources.memory.{key}: this kernel has no {name}")
    swappiness = mem.get("swappiness", -1)
    if swappiness not in (-1, (1 << 64) - 1):  # -1, also as the uint64 it is in the spec: the kernel's default
        w("memory", "memory.swappiness", swappiness, "memory.swappiness")
    if mem.get("disableOOMKiller"):
        w("memory", "memory.oom_control", 1, "memory.disableOOMKiller")
    if "useHierarchy" in mem:
        # kernels since 5.x keep it on and refuse 0 (runc ignores the key): their refusal is the answer to false
        w("memory", "memory.use_hierarchy", int(bool(mem["useHierarchy"])), "memory.useHierarchy")


def _v1_cpu(cpu: dict[str, Any], w: Writer) -> None:
    if cpu.get("shares"):
        w("cpu", "cpu.shares", cpu["shares"], "cpu.shares")
        got = w.read("cpu", "cpu.shares")
        if got != str(cpu["shares"]):  # the kernel clamps it silently
            bound = "at most" if cpu["shares"] > int(got or 0) else "at least"
            raise PyociError(f"linux.resources.cpu.shares: {cpu['shares']}: the kernel allows {bound} {got}")
    cfs = [("cpu", "cpu.cfs_period_us", cpu["period"], "cpu.period")] if "period" in cpu else []
    if "burst" in cpu:
        if not w.exists("cpu", "cpu.cfs_burst_us"):  # runc ignores it there
            raise PyociError("linux.resources.cpu.burst: this kernel has no cpu.cfs_burst_us")
        cfs.append(("cpu", "cpu.cfs_burst_us", cpu["burst"], "cpu.burst"))
    write_in_order(w, cfs, ("cpu", "cpu.cfs_quota_us", cpu["quota"], "cpu.quota") if "quota" in cpu else None)
    if "idle" in cpu:
        w("cpu", "cpu.idle", cpu["idle"], "cpu.idle")
    rt_period = [("cpu", "cpu.rt_period_us", cpu["realtimePeriod"], "cpu.realtimePeriod")] \
        if "realtimePeriod" in cpu else []
    write_in_order(w, rt_period, ("cpu", "cpu.rt_runtime_us", cpu["realtimeRuntime"], "cpu.realtimeRuntime")
              if "realtimeRuntime" in cpu else None)


def _v1(res: dict[str, Any], w: Writer, cg: "Cgroup", devices: bool) -> None:
    _v1_memory(res.get("memory", {}), w)
    _v1_cpu(res.get("cpu", {}), w)
    _cpuset_and_pids(res, w, "cpuset", "pids")
    if "blockIO" in res:
        from . import blockio  # a config without blockIO does not pay for its import

        blockio.v1(res["blockIO"], w)
    network = res.get("network", {})
    if "classID" in network:
        w("net_cls", "net_cls.classid", network["classID"], "network.classID")
    for i, prio in enumerate(network.get("priorities", [])):
        w("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}", f"network.priorities[{i}]")
    _hugetlb(res, w, cg)
    _rdma(res, w, cg)
    if devices and cg.path("devices") is not None:
        from .devices import DEFAULT_RULES, v1_line

        w.lines("devices", [("devices.deny", "a", "devices"),
                            *((f"devices.{'allow' if rule.get('allow') else 'deny'}", v1_line(rule), f"devices[{i}]")
                              for i, rule in enumerate(res.get("devices", []))),
                            *(("devices.allow", v1_line(rule), "devices") for rule in DEFAULT_RULES)])


def _hugetlb(res: dict[str, Any], w: Writer, cg: "Cgroup") -> None:
    """v1 hugetlb where it is mounted; else the unified hierarchy's (hybrid hosts keep it there)."""
    for i, h in enumerate(res.get("hugepageLimits", [])):
        size = h["pageSize"].removesuffix("B")
        if cg.path("hugetlb") is not None:
            w("hugetlb", f"hugetlb.{size}B.limit_in_bytes", h["limit"], f"hugepageLimits[{i}]")
        else:
            w("unified", f"hugetlb.{size}B.max", h["limit"], f"hugepageLimits[{i}]")


def _rdma(res: dict[str, Any], w: Writer, cg: "Cgroup") -> None:
    """rdma.max, alike on v1 and v2: in the v1 rdma hierarchy where it is mounted, else the unified one."""
    for device, limit in res.get("rdma", {}).items():
        where = f"rdma.{device}"
        controller = "rdma" if cg.path("rdma") is not None else "unified"
        v2 = cg.path("unified")
        if controller == "unified" and not (v2 and fs.exists(f"{v2}/rdma.max")):
            raise PyociError(f"linux.resources.{where}: the rdma controller is not available")
        handles, objects = (limit.get(k) for k in ("hcaHandles", "hcaObjects"))
        value = f"{device} hca_handle={'max' if handles is None else handles} " \
                f"hca_object={'max' if objects is None else objects}"
        w(controller, "rdma.max", value, where)


# checkBeforeUpdate: the usage each limit is compared with (v2 counts swap apart, so memory.current serves both)
USAGE = {False: {"limit": ("memory", "memory.usage_in_bytes"), "swap": ("memory", "memory.memsw.usage_in_bytes")},
         True: {"limit": ("unified", "memory.current"), "swap": ("unified", "memory.current")}}


def _check_usage(mem: dict[str, Any], w: Writer, v2: bool) -> None:
    """checkBeforeUpdate: the kernel takes a limit below the current usage and reclaims (v1 too, when it can)
    or OOM-kills to meet it; the caller asked to be refused instead, as runc does (best effort: no usage read,
    no check)."""
    if not mem.get("checkBeforeUpdate"):
        return
    for key in ("swap", "limit"):
        usage = w.read(*USAGE[v2][key]) if mem.get(key, 0) > 0 else ""
        if usage.isdigit() and mem[key] <= int(usage):
            raise PyociError(f"linux.resources.memory.{key}: {mem[key]} is not above the current usage {usage} "
                             "(checkBeforeUpdate)")


def _always(value: Any) -> bool:
    return True


# What cgroup v2 has no file for (runc drops these silently): a value that asks for something is refused.
V2_MISSING = (
    ("memory", "kernel", lambda v: v != -1, "cgroup v2 has no kernel memory limit"),
    ("memory", "kernelTCP", lambda v: v != -1, "cgroup v2 has no kernel TCP memory limit"),
    ("memory", "swappiness", lambda v: v not in (-1, (1 << 64) - 1), "cgroup v2 has no swappiness of a cgroup's own"),
    ("memory", "disableOOMKiller", bool, "cgroup v2 cannot switch the OOM killer off"),
    ("memory", "useHierarchy", lambda v: not v, "cgroup v2 is always hierarchical"),
    ("cpu", "realtimePeriod", _always, "cgroup v2 has no realtime group scheduling"),
    ("cpu", "realtimeRuntime", _always, "cgroup v2 has no realtime group scheduling"),
    ("blockIO", "leafWeight", bool, "leaf weights are CFQ's, a cgroup v1 scheduler"),
    ("network", "classID", _always, "cgroup v2 has no net_cls controller (classify with an eBPF program)"),
    ("network", "priorities", bool, "cgroup v2 has no net_prio controller"),
)


def _v2_refuse_missing(res: dict[str, Any]) -> None:
    for section, key, asks, why in V2_MISSING:
        if key in res.get(section, {}) and asks(res[section][key]):
            raise PyociError(f"linux.resources.{section}.{key}: {why}")
    for i, d in enumerate(res.get("blockIO", {}).get("weightDevice", [])):
        if d.get("leafWeight"):
            raise PyociError(f"linux.resources.blockIO.weightDevice[{i}].leafWeight: leaf weights are CFQ's, a "
                             "cgroup v1 scheduler")


def _v2_memory(mem: dict[str, Any], w: Writer) -> None:
    _check_usage(mem, w, True)
    if "limit" in mem:
        w("unified", "memory.max", "max" if mem["limit"] < 0 else mem["limit"], "memory.limit")
    if "reservation" in mem:
        w("unified", "memory.low", max(mem["reservation"], 0), "memory.reservation")
    swap = _v2_swap(mem, w)
    # a kernel without swap accounting has no memory.swap.max: "no limit" and "no swap" are then true anyway
    if swap is not None and (swap not in ("max", "0") or w.exists("unified", "memory.swap.max")):
        w("unified", "memory.swap.max", swap, "memory.swap")


def _v2_swap(mem: dict[str, Any], w: Writer) -> str | None:
    """memory.swap.max from v1's memory+swap, converted as runc does: swap alone is memory+swap less the
    memory limit (the one given, else on update the one in force); 0 is unset, -1 unlimited; unlimited
    memory with swap unset makes swap unlimited too."""
    swap, limit = mem.get("swap", 0), mem.get("limit")
    if not swap:
        return "max" if limit == -1 else None
    if swap < 0:
        return "max"
    if limit is None:
        current = w.read("unified", "memory.max")
        limit = int(current) if current.isdigit() else -1
    if limit < 0:
        return str(swap)
    if swap < limit:
        raise PyociError(f"linux.resources.memory.swap: {swap} (memory+swap) is below the memory limit {limit}")
    return str(swap - limit)


def _v2_cpu(cpu: dict[str, Any], w: Writer) -> None:
    if "idle" in cpu:
        w("unified", "cpu.idle", cpu["idle"], "cpu.idle")
    if cpu.get("shares"):
        w("unified", "cpu.weight", shares_to_weight(cpu["shares"]), "cpu.shares")
    burst = [("unified", "cpu.max.burst", cpu["burst"], "cpu.burst")] if "burst" in cpu else []
    cpu_max = None
    if "quota" in cpu or "period" in cpu:
        quota = cpu.get("quota", -1)
        cpu_max = ("unified", "cpu.max", f"{'max' if quota is None or quota < 0 else quota} "
                   f"{cpu.get('period') or 100000}", "cpu.quota")
    write_in_order(w, burst, cpu_max)


def _v2(res: dict[str, Any], w: Writer, cg: "Cgroup") -> None:
    _v2_refuse_missing(res)
    _v2_memory(res.get("memory", {}), w)
    _v2_cpu(res.get("cpu", {}), w)
    _cpuset_and_pids(res, w, "unified", "unified")
    if "blockIO" in res:
        from . import blockio

        blockio.v2(res["blockIO"], w)
    _hugetlb(res, w, cg)
    _rdma(res, w, cg)


def _unified(res: dict[str, Any], w: Writer) -> None:
    for key, value in res.get("unified", {}).items():
        w("unified", key, value, f"unified.{key}")


def apply(cg: "Cgroup", res: dict[str, Any], v2_only: bool, devices: bool = True,
          warn: Callable[[str], None] | None = None) -> None:
    """Writes res; `devices` (create) sets the device rules, which `update` leaves as they are; warn hears
    what the kernel took and discarded."""
    w = Writer(cg, warn)
    if v2_only:
        _v2(res, w, cg)
    else:
        _v1(res, w, cg, devices)
    _unified(res, w)
