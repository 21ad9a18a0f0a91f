"""cgroup v2 only: every resource written and read back from the container's cgroup files, update, pause and
resume, events --stats, OOM (event, exit, cleanup) and what a half-failed create leaves. They run in the cgroup
v2 guest (tests/vm/run-v2.sh, in CI through tests/e2e/test_cgroup_v2_vm.py) and skip on v1 and hybrid hosts.
Few processes per test: under software emulation each pyoci call takes a second or more."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import cgroup_dirs, create_refused
from pyoci.cgroups import release_rdma_pools

ROOT = "/sys/fs/cgroup"
pytestmark = pytest.mark.skipif(not os.path.exists(f"{ROOT}/cgroup.controllers"), reason="not a cgroup v2 host")


def cgroup_of(pyoci, cid: str) -> str:
    """The container's cgroup directory, as its init sees it from the host."""
    with open(f"/proc/{pyoci.state(cid)['pid']}/cgroup") as f:
        return ROOT + f.read().strip().split("::", 1)[1]


def read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as f:
        return f.read().strip()


def rdma_line(path: str, device: str) -> str:
    """The device's line of a cgroup's rdma.max: it lists every RDMA device of the host, and a test running
    beside this one may have made one of its own."""
    return next((line for line in read(path, "rdma.max").splitlines() if line.split()[0] == device), "")


def block_device() -> str:
    """major:minor of a block device that io.max takes (the guest's loop devices)."""
    for name in sorted(os.listdir("/sys/class/block")):
        if name.startswith("loop"):
            with open(f"/sys/class/block/{name}/dev") as f:
                return f.read().strip()
    pytest.skip("no loop block device")


def run(*argv: str) -> None:
    """One setup command; its stderr in the failure, since a bare CalledProcessError says too little."""
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr.strip()}"


@pytest.fixture
def rxe_device():
    """A soft-RoCE device of its own over a fresh veth pair (the guest has no RDMA hardware), removed with
    the veth afterwards even when the test fails."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    missing = [tool for tool in ("rdma", "ip", "modprobe") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} tool (iproute2/kmod)")
    probe = subprocess.run(["modprobe", "rdma_rxe"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no rdma_rxe module: {probe.stderr.strip()}")
    tag = uuid.uuid4().hex[:8]
    veth, name = f"rdv{tag}", f"rdrxe{tag}"  # a netdev name has at most 15 characters
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
    try:
        run("ip", "link", "set", veth, "up")
        run("rdma", "link", "add", name, "type", "rxe", "netdev", veth)
        deadline = time.monotonic() + 10
        while not os.path.isdir(f"/sys/class/infiniband/{name}"):
            assert time.monotonic() < deadline, f"{name} never appeared under /sys/class/infiniband"
            time.sleep(0.1)
        yield name
    finally:
        subprocess.run(["rdma", "link", "delete", name], capture_output=True)
        subprocess.run(["ip", "link", "delete", veth], capture_output=True)


def test_every_resource_lands_in_its_v2_file(pyoci, bundle):
    dev = block_device()
    major, minor = (int(x) for x in dev.split(":"))
    res = {"memory": {"limit": 96 << 20, "reservation": 32 << 20, "swap": 128 << 20},
           "cpu": {"shares": 2048, "quota": 30000, "period": 60000, "cpus": "0", "mems": "0", "idle": 0},
           "pids": {"limit": 77},
           "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}],
                       "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}],
           "unified": {"memory.high": str(80 << 20), "pids.max": "66"}}
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources=res))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    path = cgroup_of(pyoci, cid)
    assert read(path, "memory.max") == str(96 << 20) and read(path, "memory.low") == str(32 << 20)
    assert read(path, "memory.swap.max") == str(32 << 20)  # v1's memory+swap becomes swap alone
    assert read(path, "memory.high") == str(80 << 20)
    assert read(path, "cpu.weight") == "79" and read(path, "cpu.max") == "30000 60000"  # runc's shares → weight
    assert read(path, "cpu.idle") == "0"
    assert read(path, "cpuset.cpus") == "0" and read(path, "cpuset.mems") == "0"
    assert read(path, "pids.max") == "66"  # unified keys are written last, as given
    if os.path.exists(os.path.join(path, "io.bfq.weight")):
        assert read(path, "io.bfq.weight") == "default 300"  # BFQ takes v1's scale
    elif os.path.exists(os.path.join(path, "io.weight")):
        assert read(path, "io.weight") == "default 2930"  # runc's 10..1000 → 1..10000
    assert read(path, "io.max") == f"{dev} rbps={1 << 20} wbps=max riops=max wiops=300"
    assert read(path, "hugetlb.2MB.max") == str(4 << 21)
    assert read(path, "cgroup.procs").split() == [str(pyoci.state(cid)["pid"])]
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)


def test_rdma_limits_land_in_rdma_max_for_a_real_device(pyoci, bundle, rxe_device):
    b = bundle(["sleep", "1000"],
               lambda c: c["linux"].update(resources={"rdma": {rxe_device: {"hcaHandles": 3, "hcaObjects": 100}}}))
    cid = pyoci.new_id("rd")
    pyoci("create", "--bundle", str(b), cid)
    path = cgroup_of(pyoci, cid)
    assert rdma_line(path, rxe_device) == f"{rxe_device} hca_handle=3 hca_object=100"
    release_rdma_pools(path)  # what delete does first (see the next test)
    assert rdma_line(path, rxe_device) == f"{rxe_device} hca_handle=max hca_object=max"
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)


def test_a_device_removed_after_a_container_with_rdma_limits_harms_nothing(pyoci, bundle, rxe_device):
    """delete puts the limits back to max first (cgroups.release_rdma_pools): a pool left behind by the
    removed cgroup made the device's removal trip the kernel (list_del corruption, the rdma cgroup lock held
    for good, and every cgroup removal after it hung)."""
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources={"rdma": {rxe_device: {"hcaHandles": 2}}}))
    marker = f"pyoci-test-{uuid.uuid4().hex[:8]}"
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(marker)
    cid = pyoci.new_id("rd")
    pyoci("create", "--bundle", str(b), cid)
    path = cgroup_of(pyoci, cid)
    assert rdma_line(path, rxe_device) == f"{rxe_device} hca_handle=2 hca_object=max"
    pyoci("delete", "--force", cid)
    time.sleep(1)  # the kernel frees the removed cgroup's state after an RCU grace period and a work item
    # New cgroups with the rdma controller take the freed memory again (a stale pool's list then points into
    # zeroed memory, which the kernel's list checks catch), and removing them must still work afterwards.
    fillers = [f"/sys/fs/cgroup/pyoci-rdfill-{uuid.uuid4().hex[:8]}" for _ in range(32)]
    with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
        f.write("+rdma")
    try:
        for d in fillers:
            os.mkdir(d)
        run("rdma", "link", "delete", rxe_device)
    finally:
        subprocess.run(["sh", "-c", "rmdir \"$@\" 2>/dev/null; true", "sh", *fillers], timeout=30)
    assert not [d for d in fillers if os.path.exists(d)]
    log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.partition(marker)[2]
    assert "list_del corruption" not in log and "kernel BUG" not in log, log[-3000:]


def test_a_missing_controller_or_file_is_an_error_and_nothing_is_left(pyoci, bundle):
    for res, message in (({"unified": {"nosuch.max": "1"}}, "linux.resources.unified.nosuch.max: write 1 to"),
                         ({"rdma": {"nosuchdev": {"hcaHandles": 1}}}, "linux.resources.rdma.nosuchdev: write")):
        create_refused(pyoci, bundle, res, message)


def test_v1_only_resources_are_refused_and_nothing_is_left(pyoci, bundle):
    """runc drops these silently on cgroup v2; the container would run without the limit it asked for."""
    for res, message in (({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness: cgroup v2 has no"),
                         ({"memory": {"kernel": 1 << 20}}, "linux.resources.memory.kernel: cgroup v2 has no"),
                         ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller: "),
                         ({"cpu": {"realtimeRuntime": 1000}}, "linux.resources.cpu.realtimeRuntime: cgroup v2 has"),
                         ({"blockIO": {"leafWeight": 300}}, "linux.resources.blockIO.leafWeight: leaf weights"),
                         ({"network": {"classID": 1}}, "linux.resources.network.classID: cgroup v2 has no")):
        create_refused(pyoci, bundle, res, message)


def test_weights_burst_and_check_before_update(pyoci, bundle):
    """Per-device weights through iocost (switched on for the guest's loop device), cpu.max.burst (in
    `update` written again after a quota that lets it in), what v1-only keys may say on v2 (nothing that asks
    for a limit), and checkBeforeUpdate refusing a memory.max at or below what the cgroup uses."""
    dev = block_device()
    try:
        with open(f"{ROOT}/io.cost.qos", "w") as f:
            f.write(f"{dev} enable=1")
    except OSError as exc:
        pytest.skip(f"iocost cannot be switched on for {dev}: {exc}")
    major, minor = (int(x) for x in dev.split(":"))
    res = {"memory": {"limit": 64 << 20, "kernel": -1, "kernelTCP": -1, "disableOOMKiller": False,
                      "useHierarchy": True},
           "cpu": {"quota": 20000, "period": 100000, "burst": 10000},
           "blockIO": {"weight": 500, "weightDevice": [{"major": major, "minor": minor, "weight": 200}]}}
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources=res))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    path = cgroup_of(pyoci, cid)
    assert read(path, "io.weight").splitlines() == ["default 4950", f"{dev} 1920"]
    assert (read(path, "cpu.max"), read(path, "cpu.max.burst")) == ("20000 100000", "10000")
    pyoci("update", "--cpu-burst", "40000", "--cpu-quota", "50000", "--cpu-idle", "1", cid)  # 40000 > old quota
    assert [read(path, f) for f in ("cpu.max", "cpu.max.burst", "cpu.idle")] == ["50000 100000", "40000", "1"]
    pyoci("update", "--memory-swap", "96m", cid)  # memory+swap less the limit in force
    assert read(path, "memory.swap.max") == str(32 << 20)
    limit = 4096  # below what any live process is charged (its kernel stack alone); half of memory.current
    # raced with the guest reclaiming the container's pages under load
    proc = pyoci("update", "--resources", "-", cid, check=False,
                 input=json.dumps({"memory": {"limit": limit, "checkBeforeUpdate": True}}).encode())
    assert proc.returncode == 1 and f"linux.resources.memory.limit: {limit} is not above" in proc.stderr, proc.stderr
    assert read(path, "memory.max") == str(64 << 20)
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)


def test_update_pause_resume_and_stats(pyoci, bundle):
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources={"memory": {"limit": 64 << 20},
                                                                         "pids": {"limit": 20}}))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    path = cgroup_of(pyoci, cid)
    pyoci("update", "--memory", "128m", "--pids-limit", "30", "--cpu-quota", "20000", "--cpu-period", "100000",
          "--cpu-share", "512", cid)
    assert (read(path, "memory.max"), read(path, "pids.max")) == (str(128 << 20), "30")
    assert (read(path, "cpu.max"), read(path, "cpu.weight")) == ("20000 100000", "20")
    pyoci("pause", cid)
    assert "frozen 1" in read(path, "cgroup.events") and pyoci.state(cid)["status"] == "paused"
    pyoci("resume", cid)
    assert "frozen 0" in read(path, "cgroup.events") and pyoci.state(cid)["status"] == "running"
    stats = json.loads(pyoci("events", "--stats", cid).stdout)["data"]
    assert stats["memory"]["usage"]["limit"] == 128 << 20 and stats["pids"] == {"current": 1, "limit": 30}
    assert stats["cpu"]["usage"]["total"] > 0


def test_oom_kill_event_exit_and_cleanup(pyoci, bundle):
    """A hog in a small memory limit: the kernel kills it, events reports it, delete leaves nothing."""
    hog = "until [ -e /tmp/go ]; do sleep 0.1; done; tail /dev/zero"
    b = bundle(["sh", "-c", hog], lambda c: (c["linux"].update(resources={"memory": {"limit": 8 << 20, "swap": 8 << 20}}),
                                             c["mounts"].append({"destination": "/tmp", "type": "tmpfs",
                                                                 "source": "tmpfs"})))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    path = cgroup_of(pyoci, cid)
    watcher = subprocess.Popen([pyoci.binary, "--root", str(pyoci.root), "events", "--interval", "60s", cid],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(watcher.stdout.readline())["type"] == "stats"  # watching: let the hog go
        pyoci("exec", cid, "touch", "/tmp/go")
        assert json.loads(watcher.stdout.readline())["type"] == "oom"
    finally:
        watcher.kill()
        watcher.wait()
    events = dict(line.split() for line in read(path, "memory.events").splitlines())
    assert int(events["oom_kill"]) >= 1
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)


def test_create_that_fails_after_the_cgroup_was_made_removes_it(pyoci, bundle):
    b = bundle(["/no/such/binary"])
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and "/no/such/binary" in proc.stderr
    assert not cgroup_dirs(cid) and not os.path.exists(os.path.join(ROOT, "pyoci", cid))

