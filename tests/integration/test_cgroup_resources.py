"""The less common linux.resources on a v1 (or hybrid) host, read back from the container's cgroup files:
memory's kernel and kernelTCP, swappiness, disableOOMKiller, useHierarchy, checkBeforeUpdate; blkio throttles;
cpu burst, realtime period/runtime, idle,
the shares the kernel clamps; blockIO weights, which this kernel may lack; the write orders the kernel
insists on during `update`. Each test skips, naming the file, where the kernel does not have it."""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from conftest import cgroup_dirs, create_refused

V1 = "/sys/fs/cgroup"
pytestmark = pytest.mark.skipif(os.path.exists(f"{V1}/cgroup.controllers"), reason="a cgroup v2 host")


def need(*files: str) -> None:
    for f in files:
        if not os.path.exists(f"{V1}/{f}"):
            pytest.skip(f"this kernel has no {V1}/{f}")


def read(controller: str, cgroup: str, name: str) -> str:
    with open(f"{V1}/{controller}/{cgroup}/{name}") as f:
        return f.read().strip()


def test_memory_extras_land_in_their_files(pyoci, bundle):
    need("memory/memory.kmem.tcp.limit_in_bytes", "memory/memory.swappiness", "memory/memory.use_hierarchy")
    mem = {"limit": 64 << 20, "kernelTCP": 16 << 20, "swappiness": 10, "disableOOMKiller": True,
           "useHierarchy": True}
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources={"memory": mem}))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    cg = f"pyoci-{cid}"
    assert read("memory", cg, "memory.kmem.tcp.limit_in_bytes") == str(16 << 20)
    assert read("memory", cg, "memory.swappiness") == "10" and read("memory", cg, "memory.use_hierarchy") == "1"
    assert "oom_kill_disable 1" in read("memory", cg, "memory.oom_control")
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)


def test_kernel_memory_is_written_and_a_kernel_that_discards_it_is_named(pyoci, bundle):
    """Linux 6.x takes memory.kmem.limit_in_bytes and keeps "unlimited": pyoci says so (runc ignores the key
    outright); an older kernel keeps the limit."""
    need("memory/memory.kmem.limit_in_bytes")
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(bundle(["sleep", "1000"], lambda c: c["linux"].update(
        resources={"memory": {"limit": 64 << 20, "kernel": 32 << 20}}))), cid)
    kept = read("memory", f"pyoci-{cid}", "memory.kmem.limit_in_bytes")
    if kept == str(32 << 20):
        assert "warning" not in proc.stderr
    else:
        assert proc.stderr == (f"pyoci: create {cid}: warning: linux.resources.memory.kernel: this kernel discards "
                               f"the limit (memory.kmem.limit_in_bytes stays {kept})\n")


def test_check_before_update_refuses_a_limit_at_or_below_the_usage(pyoci, bundle):
    """Asked to check first, update compares the new limit with the usage itself (its own words, not the
    kernel's EBUSY, which v1 gives only once reclaim has failed). 4096 is below what any live process is
    charged."""
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sleep", "1000"], lambda c: c["linux"].update(
        resources={"memory": {"limit": 64 << 20}}))), cid)
    proc = pyoci("update", "--resources", "-", cid, check=False,
                 input=b'{"memory": {"limit": 4096, "checkBeforeUpdate": true}}')
    assert proc.returncode == 1 and "linux.resources.memory.limit: 4096 is not above the current usage" in \
        proc.stderr and "(checkBeforeUpdate)" in proc.stderr, proc.stderr
    assert read("memory", f"pyoci-{cid}", "memory.limit_in_bytes") == str(64 << 20)


def test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files(pyoci, bundle):
    need("cpu/cpu.cfs_burst_us", "cpu/cpu.rt_runtime_us", "cpu/cpu.idle")
    # realtime time must come from the parent's budget: pyoci's default parent has none, the root has
    name = f"pyoci-rt-{uuid.uuid4().hex[:8]}"
    cpu = {"period": 50000, "quota": 20000, "burst": 10000, "realtimePeriod": 500000, "realtimeRuntime": 10000,
           "idle": 1, "cpus": "0", "mems": "0"}
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(cgroupsPath=f"/{name}", resources={"cpu": cpu}))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    try:
        got = [read("cpu", name, f) for f in ("cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us",
                                              "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle")]
        assert got == ["50000", "20000", "10000", "500000", "10000", "1"]
        assert (read("cpuset", name, "cpuset.cpus"), read("cpuset", name, "cpuset.mems")) == ("0", "0")
    finally:
        pyoci("delete", "--force", cid)
    assert not cgroup_dirs(name)


def test_update_writes_in_the_order_the_kernel_needs(pyoci, bundle):
    """The kernel refuses a burst above the current quota: the new quota must go in first."""
    need("cpu/cpu.cfs_burst_us", "cpu/cpu.idle")
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources={"cpu": {"quota": 20000, "period": 100000}}))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    pyoci("update", "--cpu-burst", "40000", "--cpu-quota", "50000", "--cpu-idle", "1", cid)
    cg = f"pyoci-{cid}"
    assert (read("cpu", cg, "cpu.cfs_quota_us"), read("cpu", cg, "cpu.cfs_burst_us")) == ("50000", "40000")
    assert read("cpu", cg, "cpu.idle") == "1"
    proc = pyoci("update", "--cpu-burst", "90000", cid, check=False)  # nothing to write after it: refused
    assert proc.returncode == 1 and "linux.resources.cpu.burst: write 90000" in proc.stderr, proc.stderr
    pyoci("delete", "--force", cid)


def test_memory_limit_below_usage_names_the_usage(pyoci, bundle):
    b = bundle(["sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 1000"],
               lambda c: c["linux"].update(resources={"memory": {"limit": 64 << 20, "swap": 64 << 20}}))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    proc = pyoci("update", "--memory", "64k", cid, check=False)
    assert proc.returncode == 1 and "linux.resources.memory.limit: 65536 is below the current usage" in proc.stderr, \
        proc.stderr
    pyoci("delete", "--force", cid)


def test_shares_the_kernel_clamps_are_refused(pyoci, bundle):
    need("cpu/cpu.shares")
    create_refused(pyoci, bundle, {"cpu": {"shares": 1}}, "linux.resources.cpu.shares: 1: the kernel allows at least 2")


def block_devices() -> dict[str, str]:
    """major:minor → the I/O scheduler of each block device but loop devices (tests attach and switch
    those while this one runs)."""
    found = {}
    for name in os.listdir("/sys/class/block"):
        if name.startswith("loop"):
            continue
        try:
            with open(f"/sys/class/block/{name}/dev") as f, open(f"/sys/class/block/{name}/queue/scheduler") as s:
                found[f.read().strip()] = s.read().split("[", 1)[-1].split("]")[0]
        except OSError:
            continue  # a partition: no queue of its own
    return found


def test_unified_keys_go_to_the_v2_hierarchy_of_a_hybrid_host(pyoci, bundle):
    need("unified/cgroup.max.descendants")
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(bundle(["sleep", "1000"], lambda c: c["linux"].update(
        resources={"unified": {"cgroup.max.descendants": "5"}}))), cid)
    assert read("unified", f"pyoci-{cid}", "cgroup.max.descendants") == "5"


def test_blockio_throttles_land_in_their_files(pyoci, bundle):
    need("blkio/blkio.throttle.read_bps_device")
    dev = next(iter(block_devices()), None)
    if dev is None:
        pytest.skip("no block device but loop devices")
    major, minor = (int(n) for n in dev.split(":"))
    keys = {"throttleReadBpsDevice": ("read_bps_device", 1 << 20),
            "throttleWriteBpsDevice": ("write_bps_device", 2 << 20),
            "throttleReadIOPSDevice": ("read_iops_device", 300),
            "throttleWriteIOPSDevice": ("write_iops_device", 400)}
    blkio = {key: [{"major": major, "minor": minor, "rate": rate}] for key, (_, rate) in keys.items()}
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(bundle(["sleep", "1000"], lambda c: c["linux"].update(
        resources={"blockIO": blkio}))), cid)
    for file, rate in keys.values():
        assert read("blkio", f"pyoci-{cid}", f"blkio.throttle.{file}") == f"{dev} {rate}"


def test_blockio_weights(pyoci, bundle):
    """Weights go to CFQ's files or, on kernels without CFQ (this one), to BFQ's, which only non-root
    cgroups have; BFQ refuses a per-device weight for a device it does not schedule. leafWeight is CFQ's
    alone."""
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources={"blockIO": {"weight": 500}}))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    if proc.returncode:
        assert "linux.resources.blockIO.weight: this kernel has neither blkio.weight nor blkio.bfq.weight" in \
            proc.stderr and not cgroup_dirs(cid), proc.stderr
        return
    cg = f"pyoci-{cid}"
    cfq = os.path.exists(f"{V1}/blkio/{cg}/blkio.weight")
    assert read("blkio", cg, "blkio.weight" if cfq else "blkio.bfq.weight") == "500"
    pyoci("delete", "--force", cid)
    other = next((d for d, sched in block_devices().items() if sched not in ("bfq", "cfq")), None)
    if not cfq and other:  # BFQ refuses a device it does not schedule, in one line naming the entry
        major, minor = (int(n) for n in other.split(":"))
        create_refused(pyoci, bundle, {"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 200}]}},
                f"linux.resources.blockIO.weightDevice[0].weight: write {other} 200 to")
    if not cfq:
        create_refused(pyoci, bundle, {"blockIO": {"leafWeight": 300}}, "linux.resources.blockIO.leafWeight: write 300")
        create_refused(pyoci, bundle, {"blockIO": {"weightDevice": [{"major": 7, "minor": 0, "leafWeight": 300}]}},
                "linux.resources.blockIO.weightDevice[0].leafWeight: write 7:0 300")


@pytest.fixture
def bfq_device(tmp_path):
    """major:minor of a loop device of the test's own, switched to the BFQ scheduler; detached after."""
    backing = tmp_path / "disk"
    backing.write_bytes(b"\0" * (1 << 20))
    loop = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if loop.returncode:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    name = os.path.basename(loop.stdout.strip())
    try:
        try:
            with open(f"/sys/block/{name}/queue/scheduler", "w") as f:
                f.write("bfq")
        except OSError as exc:
            pytest.skip(f"{name} cannot use BFQ: {exc}")
        with open(f"/sys/block/{name}/dev") as f:
            yield f.read().strip()
    finally:
        subprocess.run(["losetup", "-d", f"/dev/{name}"], check=True)


def test_blockio_weight_device_on_a_bfq_device(pyoci, bundle, bfq_device):
    need("blkio")
    major, minor = bfq_device.split(":")
    res = {"blockIO": {"weightDevice": [{"major": int(major), "minor": int(minor), "weight": 200}]}}
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources=res))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    try:
        cfq = os.path.exists(f"{V1}/blkio/pyoci-{cid}/blkio.weight_device")
        assert f"{bfq_device} 200" in read("blkio", f"pyoci-{cid}", "blkio.weight_device" if cfq else
                                           "blkio.bfq.weight_device")
    finally:
        pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)
