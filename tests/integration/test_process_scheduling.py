"""process.scheduler, process.ioPriority, process.execCPUAffinity and linux.memoryPolicy, read back from the
kernel: sched_getattr(2), ioprio_get(2) and sched_getaffinity(2) of the container's processes from the host,
/proc/self/numa_maps from inside. For the container's init, for `exec`, and for `exec --process` carrying
its own."""
from __future__ import annotations

import ctypes
import json
import os
import platform
import struct
import uuid

import pytest

from conftest import cgroup_dirs

LIBC = ctypes.CDLL(None, use_errno=True)
# (ioprio_get, sched_getattr) by architecture
SYSCALLS = {"x86_64": (252, 315), "aarch64": (31, 275)}.get(platform.machine())
pytestmark = pytest.mark.skipif(SYSCALLS is None, reason=f"no syscall numbers for {platform.machine()} here")
SCHED_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr, SCHED_ATTR_SIZE_VER1


def ioprio(pid: int) -> tuple[int, int]:
    """(class, level) of pid (IOPRIO_WHO_PROCESS)."""
    value = LIBC.syscall(SYSCALLS[0], 1, pid)
    assert value >= 0, os.strerror(ctypes.get_errno())
    return value >> 13, value & 0x1FFF


def sched_attr(pid: int) -> dict[str, int]:
    buf = ctypes.create_string_buffer(SCHED_ATTR.size)
    assert LIBC.syscall(SYSCALLS[1], pid, buf, SCHED_ATTR.size, 0) == 0, os.strerror(ctypes.get_errno())
    names = ("size", "policy", "flags", "nice", "priority", "runtime", "deadline", "period", "util_min", "util_max")
    return dict(zip(names, SCHED_ATTR.unpack(buf.raw)))


def running(pyoci, bundle, edit=None, **kw) -> tuple[str, int]:
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sleep", "1000"], edit)), cid, **kw)
    return cid, pyoci.state(cid)["pid"]


def exec_detached(pyoci, tmp_path, cid: str, process: dict | None = None, **kw) -> int:
    """A `sleep` exec'd into cid (with --process when given); its pid."""
    pid_file = tmp_path / f"exec-{uuid.uuid4().hex[:8]}.pid"
    if process is None:
        pyoci("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "1000", **kw)
    else:
        path = tmp_path / f"process-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps({"args": ["sleep", "1000"], "cwd": "/", "user": {"uid": 0, "gid": 0}, **process}))
        pyoci("exec", "-d", "--pid-file", str(pid_file), "--process", str(path), cid, **kw)
    return int(pid_file.read_text())


def refused(pyoci, bundle, edit, message: str) -> None:
    cid = pyoci.new_id()
    proc = pyoci("run", "--bundle", str(bundle(["true"], edit)), cid, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and not cgroup_dirs(cid)


CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}


def test_io_priority_every_class_and_level_for_the_init_and_exec(pyoci, bundle, tmp_path):
    cid, init = running(pyoci, bundle, lambda c: c["process"].update(ioPriority={"class": "IOPRIO_CLASS_IDLE",
                                                                                "priority": 4}))
    assert ioprio(init) == (3, 4)
    assert ioprio(exec_detached(pyoci, tmp_path, cid)) == (3, 4)  # exec takes the container's
    for name, klass in CLASSES.items():
        for level in range(8):
            pid = exec_detached(pyoci, tmp_path, cid, {"ioPriority": {"class": name, "priority": level}})
            assert ioprio(pid) == (klass, level), (name, level)


def realtime_budget(c: dict, name: str) -> None:
    """A v1 cpu cgroup gives a realtime task no time unless told (rt_runtime_us 0): one of the root's, which
    has the budget to give, with some of it."""
    if os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        c["linux"]["cgroupsPath"] = f"/{name}"
        c["linux"]["resources"]["cpu"] = {"realtimePeriod": 1000000, "realtimeRuntime": 100000}


POLICIES = [
    # (scheduler, what sched_getattr must say)
    ({"policy": "SCHED_OTHER", "nice": 7}, {"policy": 0, "nice": 7}),
    ({"policy": "SCHED_BATCH", "nice": -5}, {"policy": 3, "nice": -5}),
    ({"policy": "SCHED_IDLE"}, {"policy": 5}),
    ({"policy": "SCHED_FIFO", "priority": 10}, {"policy": 1, "priority": 10}),
    ({"policy": "SCHED_RR", "priority": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
     {"policy": 2, "priority": 5, "flags": 1}),
    ({"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 10000000, "period": 20000000,
      "flags": ["SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]},
     {"policy": 6, "runtime": 1000000, "deadline": 10000000, "period": 20000000, "flags": 6}),
    # KEEP_POLICY: the policy asked for is not taken, the nice value is
    ({"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_KEEP_POLICY"]}, {"policy": 0, "nice": 3}),
    # KEEP_PARAMS: policy and parameters both stay (the flag is there to change the utilization clamps alone)
    ({"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_KEEP_PARAMS"]}, {"policy": 0, "nice": 0}),
]


@pytest.mark.parametrize("scheduler, expect", POLICIES, ids=[f"{s['policy']}-{'-'.join(s.get('flags', []))}"
                                                             for s, _ in POLICIES])
def test_scheduler_policy_nice_priority_deadline_and_flags(pyoci, bundle, scheduler, expect):
    name = f"pyoci-sched-{uuid.uuid4().hex[:8]}"

    def edit(c):
        c["process"]["scheduler"] = scheduler
        if scheduler["policy"] in ("SCHED_FIFO", "SCHED_RR"):
            realtime_budget(c, name)
    _, init = running(pyoci, bundle, edit)
    got = sched_attr(init)
    assert {k: got[k] for k in expect} == expect, got


def test_utilization_clamp_flags_apply_or_are_refused(pyoci, bundle, tmp_path):
    """The spec gives the flags and no values: the clamps get runc's (0). A kernel without utilization
    clamping (CONFIG_UCLAMP_TASK, this one) refuses them, in one line."""
    buf = SCHED_ATTR.pack(SCHED_ATTR.size, 0, 0x20, 0, 0, 0, 0, 0, 0, 0)
    probe = LIBC.syscall(314, 0, ctypes.c_char_p(buf), 0) if SYSCALLS[1] == 315 else -1
    flags = ["SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX"]
    edit = lambda c: c["process"].update(scheduler={"policy": "SCHED_OTHER", "flags": flags})  # noqa: E731
    if probe != 0:
        refused(pyoci, bundle, edit, "process.scheduler: sched_setattr: this kernel has no utilization clamping")
        return
    _, init = running(pyoci, bundle, edit)
    got = sched_attr(init)
    assert (got["util_min"], got["util_max"]) == (0, 0)


def test_scheduler_errors_say_what_to_change(pyoci, bundle):
    refused(pyoci, bundle, lambda c: c["process"].update(scheduler={"policy": "SCHED_ISO"}),
            "process.scheduler.policy: SCHED_ISO is not a Linux policy")
    refused(pyoci, bundle, lambda c: c["process"].update(scheduler={"policy": "SCHED_FIFO", "nice": 3,
                                                                    "priority": 1}),
            "process.scheduler.nice: SCHED_FIFO has no nice value")
    refused(pyoci, bundle, lambda c: c["process"].update(scheduler={"policy": "SCHED_DEADLINE", "runtime": 5000,
                                                                    "deadline": 1000}),
            "process.scheduler: SCHED_DEADLINE needs 0 < runtime <= deadline <= period")
    if os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        # a realtime policy in a cgroup without realtime time: the kernel's EPERM, explained
        refused(pyoci, bundle, lambda c: c["process"].update(scheduler={"policy": "SCHED_FIFO", "priority": 1}),
                "linux.resources.cpu.realtimeRuntime")


def test_exec_takes_the_containers_scheduler_unless_its_process_file_has_one(pyoci, bundle, tmp_path):
    cid, _ = running(pyoci, bundle, lambda c: c["process"].update(scheduler={"policy": "SCHED_BATCH", "nice": 4}))
    assert (lambda a: (a["policy"], a["nice"]))(sched_attr(exec_detached(pyoci, tmp_path, cid))) == (3, 4)
    own = exec_detached(pyoci, tmp_path, cid, {"scheduler": {"policy": "SCHED_IDLE"}})
    assert sched_attr(own)["policy"] == 5
    inherited = exec_detached(pyoci, tmp_path, cid, {})
    assert (lambda a: (a["policy"], a["nice"]))(sched_attr(inherited)) == (3, 4)


def two_cpus() -> None:
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")


def pinned_to(cpus: set[int]) -> dict:
    """subprocess arguments that start pyoci itself pinned: nothing of that may reach the container."""
    return {"preexec_fn": lambda: os.sched_setaffinity(0, cpus)}


def test_exec_cpu_affinity_initial_and_final_for_exec_and_its_process_file(pyoci, bundle, tmp_path):
    """final is what the exec'd process runs on; initial only (no final) stays once the process runs, as
    nothing moves it after the cgroup join; the init is not touched by either (the spec exempts it) and
    inherits nothing from the runtime's own affinity."""
    two_cpus()
    everything = os.sched_getaffinity(0)
    cid, init = running(pyoci, bundle, lambda c: c["process"].update(execCPUAffinity={"initial": "0", "final": "1"}),
                        **pinned_to({0}))
    assert os.sched_getaffinity(init) == everything
    assert os.sched_getaffinity(exec_detached(pyoci, tmp_path, cid)) == {1}
    assert os.sched_getaffinity(exec_detached(pyoci, tmp_path, cid, {"execCPUAffinity": {"initial": "1"}})) == {1}
    assert os.sched_getaffinity(exec_detached(pyoci, tmp_path, cid, {"execCPUAffinity": {"final": "0"}})) == {0}
    assert os.sched_getaffinity(exec_detached(pyoci, tmp_path, cid, {"execCPUAffinity": {"initial": "0-1",
                                                                                          "final": "0"}})) == {0}


def test_exec_without_cpu_affinity_does_not_inherit_the_runtimes(pyoci, bundle, tmp_path):
    two_cpus()
    cid, _ = running(pyoci, bundle)
    assert os.sched_getaffinity(exec_detached(pyoci, tmp_path, cid, **pinned_to({1}))) == os.sched_getaffinity(0)


def test_exec_cpu_affinity_errors(pyoci, bundle, tmp_path):
    refused(pyoci, bundle, lambda c: c["process"].update(execCPUAffinity={"initial": "0-x"}),
            "process.execCPUAffinity.initial: not a list like 0-3,7")
    cid, _ = running(pyoci, bundle)
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                                "execCPUAffinity": {"final": "4000"}}))
    proc = pyoci("exec", "--process", str(path), cid, check=False)
    assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1
    assert "process.execCPUAffinity.final: sched_setaffinity: none of these CPUs is online" in proc.stderr


MEMORY_POLICIES = [
    # (linux.memoryPolicy, the task policy /proc/self/numa_maps shows)
    ({"mode": "MPOL_DEFAULT"}, "default"),
    ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}, "weighted interleave:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_PREFERRED"}, "local"),
    ({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}, "prefer (many):0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}, "interleave=relative:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, "bind=balancing:0"),
]


def numa() -> None:
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("this kernel has no NUMA")


@pytest.mark.parametrize("policy, shown", MEMORY_POLICIES, ids=[s for _, s in MEMORY_POLICIES])
def test_memory_policy_every_mode_and_flag(pyoci, bundle, policy, shown):
    numa()
    out = pyoci("run", "--bundle", str(bundle(["sh", "-c", "head -n1 /proc/self/numa_maps"],
                                                lambda c: c["linux"].update(memoryPolicy=policy))),
                pyoci.new_id()).stdout
    assert out.split()[1] == shown.split()[0] and shown in out, out


def test_memory_policy_reaches_exec(pyoci, bundle):
    numa()
    cid, _ = running(pyoci, bundle, lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0"}))
    assert " bind:0 " in pyoci("exec", cid, "head", "-n1", "/proc/self/numa_maps").stdout


def test_memory_policy_nodes_the_host_lacks_and_bad_combinations_are_refused(pyoci, bundle):
    numa()
    refused(pyoci, bundle, lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0,63"}),
            "linux.memoryPolicy.nodes: node 63 not on this host")
    refused(pyoci, bundle, lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND"}),
            "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node")
    refused(pyoci, bundle, lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_LOCAL", "nodes": "0"}),
            "linux.memoryPolicy.nodes: MPOL_LOCAL takes no nodes")
    refused(pyoci, bundle, lambda c: c["linux"].update(memoryPolicy={
        "mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
        "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
