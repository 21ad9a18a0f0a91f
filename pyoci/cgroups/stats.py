"""`events --stats`: runc's stats JSON (cpu, memory, pids, blkio, hugetlb) read from v1 or v2 files, and
the OOM-kill counter that `events` watches."""
from __future__ import annotations

import posix

from ..linux.fs import isdir
from . import read_value

TICK_NS = 1_000_000_000 // posix.sysconf("SC_CLK_TCK")


def _int(text: str) -> int:
    """A cgroup number; "max" (v2's unlimited) reads as 0, as runc reports it."""
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return 0


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _blkio_entries(text: str) -> list[dict[str, object]]:
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return entries


def _v1(cg) -> dict[str, object]:
    cpuacct, cpu, mem, pids = cg.path("cpuacct"), cg.path("cpu"), cg.path("memory"), cg.path("pids")
    ticks = _keyed(read_value(cpuacct, "cpuacct.stat"))
    throttle = _keyed(read_value(cpu, "cpu.stat"))

    def usage(prefix: str) -> dict[str, int]:
        return {"usage": _int(read_value(mem, f"{prefix}.usage_in_bytes")), "max": _int(read_value(mem, f"{prefix}.max_usage_in_bytes")),
                "failcnt": _int(read_value(mem, f"{prefix}.failcnt")), "limit": _int(read_value(mem, f"{prefix}.limit_in_bytes"))}

    blkio = cg.path("blkio")
    return {
        "cpu": {"usage": {"total": _int(read_value(cpuacct, "cpuacct.usage")),
                          "percpu": [int(x) for x in read_value(cpuacct, "cpuacct.usage_percpu").split()],
                          "kernel": ticks.get("system", 0) * TICK_NS, "user": ticks.get("user", 0) * TICK_NS},
                "throttling": {"periods": throttle.get("nr_periods", 0), "throttledPeriods": throttle.get("nr_throttled", 0),
                               "throttledTime": throttle.get("throttled_time", 0)}},
        "memory": {"usage": usage("memory"), "swap": usage("memory.memsw"), "kernel": usage("memory.kmem"),
                   "kernelTCP": usage("memory.kmem.tcp"), "raw": _keyed(read_value(mem, "memory.stat"))},
        "pids": {"current": _int(read_value(pids, "pids.current")), "limit": _int(read_value(pids, "pids.max"))},
        "blkio": {"ioServiceBytesRecursive": _blkio_entries(read_value(blkio, "blkio.throttle.io_service_bytes")),
                  "ioServicedRecursive": _blkio_entries(read_value(blkio, "blkio.throttle.io_serviced"))},
        "hugetlb": _hugetlb(cg),
    }


def _v2(base: str, cg) -> dict[str, object]:
    cpu = _keyed(read_value(base, "cpu.stat"))
    raw = _keyed(read_value(base, "memory.stat"))
    return {
        "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000, "kernel": cpu.get("system_usec", 0) * 1000,
                          "user": cpu.get("user_usec", 0) * 1000},
                "throttling": {"periods": cpu.get("nr_periods", 0), "throttledPeriods": cpu.get("nr_throttled", 0),
                               "throttledTime": cpu.get("throttled_usec", 0) * 1000}},
        "memory": {"usage": {"usage": _int(read_value(base, "memory.current")), "max": _int(read_value(base, "memory.peak")),
                             "limit": _int(read_value(base, "memory.max")),
                             "failcnt": _keyed(read_value(base, "memory.events")).get("max", 0)},
                   "swap": {"usage": _int(read_value(base, "memory.swap.current")), "limit": _int(read_value(base, "memory.swap.max"))},
                   "raw": raw},
        "pids": {"current": _int(read_value(base, "pids.current")), "limit": _int(read_value(base, "pids.max"))},
        "hugetlb": _hugetlb(cg),
    }


def _hugetlb(cg) -> dict[str, dict[str, int]]:
    v1 = cg.path("hugetlb")
    base = v1 or cg.v2_path
    out: dict[str, dict[str, int]] = {}
    for name in (posix.listdir(base) if base and isdir(base) else []):
        if v1 and name.endswith(".usage_in_bytes") and name.count(".") == 2:
            size = name.split(".")[1]
            out[size] = {"usage": _int(read_value(base, name)), "max": _int(read_value(base, f"hugetlb.{size}.max_usage_in_bytes")),
                         "failcnt": _int(read_value(base, f"hugetlb.{size}.failcnt"))}
        elif not v1 and name.startswith("hugetlb.") and name.endswith(".current"):
            size = name.split(".")[1]
            out[size] = {"usage": _int(read_value(base, name)), "max": _int(read_value(base, f"hugetlb.{size}.max"))}
    return out


def stats(cg, v2_only: bool) -> dict[str, object]:
    return _v2(cg.v2_path, cg) if v2_only else _v1(cg)


def oom_kills(cg, v2_only: bool) -> int:
    """How many processes the OOM killer took from this cgroup so far."""
    if v2_only:
        return _keyed(read_value(cg.v2_path, "memory.events")).get("oom_kill", 0)
    return _keyed(read_value(cg.path("memory"), "memory.oom_control")).get("oom_kill", 0)
