"""linux.resources → cgroup file values: the v1 and v2 mappings and runc's conversions (pure logic; the
kernel's side is covered by the integration tests)."""
from __future__ import annotations

import errno

import pytest

from pyoci.cgroups import Cgroup
from pyoci.cgroups.blockio import blkio_to_io_weight
from pyoci.cgroups.limits import apply, shares_to_weight, write_in_order
from pyoci.errors import ConfigError, PyociError
from pyoci.spec import check_resources


def written(tmp_path, paths, res, v2, files=()):
    """What apply writes into fake cgroup directories holding the usual files and `files` (name or
    (name, content))."""
    for p in paths.values():
        (tmp_path / p).mkdir(parents=True, exist_ok=True)
    cg = Cgroup({name: str(tmp_path / p) for name, p in paths.items()})
    for name, p in paths.items():  # the files a cgroup directory would have
        for f in ("memory.max", "memory.swap.max", "memory.low", "memory.high", "cpu.weight", "cpu.max",
                  "cpuset.cpus", "pids.max", "io.max", "rdma.max", *files):
            f, content = (f, "") if isinstance(f, str) else f
            (tmp_path / p / f).write_text(content)
    apply(cg, res, v2_only=v2)
    return {f"{p}/{f.name}": f.read_text() for p in paths.values() for f in (tmp_path / p).iterdir()
            if f.read_text()}


def test_v2_conversions(tmp_path):
    res = {"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 1 << 20},
           "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
           "pids": {"limit": -1}, "unified": {"memory.high": "max"}}
    got = written(tmp_path, {"": "v2"}, res, v2=True)
    assert got == {"v2/memory.max": str(64 << 20), "v2/memory.swap.max": str(32 << 20), "v2/memory.low": str(1 << 20),
                   "v2/cpu.weight": "39", "v2/cpu.max": "50000 100000", "v2/cpuset.cpus": "0", "v2/pids.max": "max",
                   "v2/memory.high": "max"}


@pytest.mark.parametrize("files, expected", [
    (("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
     {"v1/memory.limit_in_bytes": "-1", "v1/memory.memsw.limit_in_bytes": "-1"}),
    (("memory.limit_in_bytes",), {"v1/memory.limit_in_bytes": "-1"}),  # no swap accounting: no memsw file
])
def test_v1_unlimited_memory_makes_memory_and_swap_unlimited(tmp_path, files, expected):
    """runc's rule for `update --memory -1` with swap unset: the old memsw limit would refuse it otherwise."""
    assert written(tmp_path, {"memory": "v1"}, {"memory": {"limit": -1}}, v2=False, files=files) == expected


def test_v2_io_throttle_and_rdma(tmp_path):
    res = {"blockIO": {"throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 300}]},
           "rdma": {"rxe0": {"hcaHandles": 2}}}
    got = written(tmp_path, {"": "v2"}, res, v2=True)
    assert got == {"v2/io.max": "7:0 wiops=300", "v2/rdma.max": "rxe0 hca_handle=2 hca_object=max"}


def test_rdma_without_its_controller_is_named(tmp_path):
    (tmp_path / "v2").mkdir()
    with pytest.raises(PyociError, match="linux.resources.rdma.mlx5_1: the rdma controller is not available"):
        apply(Cgroup({"": str(tmp_path / "v2")}), {"rdma": {"mlx5_1": {"hcaObjects": 1}}}, v2_only=True)


def test_shares_to_weight_matches_runc():
    assert [shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]


@pytest.mark.parametrize("res, message", [
    ({"unified": {".../x": "1"}}, r"linux.resources.unified.\.\.\./x: not a cgroup file name"),
    ({"memory": {"swappiness": 101}}, r"linux.resources.memory.swappiness: 101 is not in 0..100"),
    ({"memory": {"limit": 100, "swap": 50}}, r"linux.resources.memory.swap: 50 \(memory\+swap\) is below the memory limit 100"),
])
def test_resources_a_schema_cannot_check_are_refused_by_validation(res, message):
    """Refused when the config is read, before a cgroup is made (no kernel needed to tell)."""
    with pytest.raises(ConfigError, match=message):
        check_resources(res, "linux.resources")


def test_missing_controller_is_named(tmp_path):
    with pytest.raises(PyociError, match="linux.resources.network.classID: the net_cls controller is not available"):
        written(tmp_path, {"memory": "mem"}, {"network": {"classID": 1}}, v2=False)


def test_blkio_to_io_weight_matches_runc():
    assert [blkio_to_io_weight(w) for w in (10, 500, 1000)] == [1, 4950, 10000]


DEV = {"major": 8, "minor": 0}


def test_v1_weights_fall_back_to_bfq_files(tmp_path):
    res = {"blockIO": {"weight": 500, "leafWeight": 300, "weightDevice": [{**DEV, "weight": 200, "leafWeight": 100}]}}
    files = ("blkio.bfq.weight", "blkio.bfq.weight_device", "blkio.leaf_weight", "blkio.leaf_weight_device")
    got = written(tmp_path, {"blkio": "b"}, res, v2=False, files=files)
    assert got == {"b/blkio.bfq.weight": "500", "b/blkio.leaf_weight": "300", "b/blkio.bfq.weight_device": "8:0 200",
                   "b/blkio.leaf_weight_device": "8:0 100"}
    got = written(tmp_path, {"blkio": "c"}, {"blockIO": {"weightDevice": [{**DEV, "weight": 200}]}}, v2=False,
                  files=("blkio.weight", "blkio.weight_device", "blkio.bfq.weight"))
    assert got == {"c/blkio.weight_device": "8:0 200"}  # CFQ's files first, as runc


def test_v1_weight_without_weight_files_names_the_config_path(tmp_path):
    for res, where in (({"weight": 500}, "blockIO.weight"),
                       ({"weightDevice": [{**DEV, "weight": 20}]}, r"blockIO.weightDevice\[0\].weight")):
        with pytest.raises(PyociError, match=f"linux.resources.{where}: this kernel has neither blkio.weight"):
            written(tmp_path, {"blkio": "b"}, {"blockIO": res}, v2=False)
    with pytest.raises(PyociError, match="linux.resources.blockIO.weight: the blkio controller is not available"):
        written(tmp_path, {"memory": "m"}, {"blockIO": {"weight": 500}}, v2=False)


def test_v2_weights_convert_unless_bfq(tmp_path):
    res = {"blockIO": {"weight": 500, "weightDevice": [{**DEV, "weight": 200}]}}
    got = written(tmp_path, {"": "iocost"}, res, v2=True, files=("io.weight",))
    assert got == {"iocost/io.weight": "8:0 1920"}  # the device line last
    got = written(tmp_path, {"": "oldbfq"}, {"blockIO": {"weight": 500}}, v2=True, files=(("io.bfq.weight", "100"),))
    assert got == {"oldbfq/io.bfq.weight": "500"}
    got = written(tmp_path, {"": "bfq"}, {"blockIO": {"weightDevice": [{**DEV, "weight": 200}]}}, v2=True,
                  files=(("io.bfq.weight", "default 100\n"), "io.weight"))
    assert got["bfq/io.bfq.weight"].startswith("8:0 200") and "bfq/io.weight" not in got


def test_v1_memory_extras(tmp_path):
    mem = {"kernel": 1 << 20, "kernelTCP": 2 << 20, "swappiness": 10, "disableOOMKiller": True, "useHierarchy": True}
    files = ("memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.swappiness",
             "memory.oom_control", "memory.use_hierarchy")
    got = written(tmp_path, {"memory": "m"}, {"memory": mem}, v2=False, files=files)
    assert got == {"m/memory.kmem.limit_in_bytes": str(1 << 20), "m/memory.kmem.tcp.limit_in_bytes": str(2 << 20),
                   "m/memory.swappiness": "10", "m/memory.oom_control": "1", "m/memory.use_hierarchy": "1"}
    assert written(tmp_path, {"memory": "n"}, {"memory": {"swappiness": (1 << 64) - 1}}, v2=False) == {}


def test_v1_kernel_memory_the_kernel_lacks_is_refused_unless_unlimited(tmp_path):
    with pytest.raises(PyociError, match="memory.kernel: this kernel has no memory.kmem.limit_in_bytes"):
        written(tmp_path, {"memory": "m"}, {"memory": {"kernel": 1 << 20}}, v2=False)
    assert written(tmp_path, {"memory": "n"}, {"memory": {"kernel": -1, "kernelTCP": -1}}, v2=False) == {}


def test_v1_cpu_extras(tmp_path):
    cpu = {"shares": 512, "period": 50000, "quota": 20000, "burst": 10000, "realtimePeriod": 500000,
           "realtimeRuntime": 1000, "idle": 1}
    files = ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us",
             "cpu.rt_runtime_us", "cpu.idle")
    got = written(tmp_path, {"cpu,cpuacct": "c"}, {"cpu": cpu}, v2=False, files=files)
    assert got == {"c/cpu.shares": "512", "c/cpu.cfs_period_us": "50000", "c/cpu.cfs_quota_us": "20000",
                   "c/cpu.cfs_burst_us": "10000", "c/cpu.rt_period_us": "500000", "c/cpu.rt_runtime_us": "1000",
                   "c/cpu.idle": "1"}
    with pytest.raises(PyociError, match="linux.resources.cpu.burst: this kernel has no cpu.cfs_burst_us"):
        written(tmp_path, {"cpu": "d"}, {"cpu": {"burst": 1}}, v2=False, files=("cpu.shares",))  # runc ignores it


V2_REFUSED = [
    ({"memory": {"kernel": 1}}, "memory.kernel: cgroup v2 has no kernel memory limit"),
    ({"memory": {"kernelTCP": 1}}, "memory.kernelTCP: cgroup v2 has no kernel TCP memory limit"),
    ({"memory": {"swappiness": 5}}, "memory.swappiness: cgroup v2 has no swappiness of a cgroup's own"),
    ({"memory": {"disableOOMKiller": True}}, "memory.disableOOMKiller: cgroup v2 cannot switch the OOM killer off"),
    ({"memory": {"useHierarchy": False}}, "memory.useHierarchy: cgroup v2 is always hierarchical"),
    ({"cpu": {"realtimePeriod": 1}}, "cpu.realtimePeriod: cgroup v2 has no realtime group scheduling"),
    ({"cpu": {"realtimeRuntime": 1}}, "cpu.realtimeRuntime: cgroup v2 has no realtime group scheduling"),
    ({"blockIO": {"leafWeight": 300}}, "blockIO.leafWeight: leaf weights are CFQ's"),
    ({"blockIO": {"weightDevice": [{**DEV, "leafWeight": 3}]}}, r"blockIO.weightDevice\[0\].leafWeight: leaf weights"),
    ({"network": {"classID": 1}}, "network.classID: cgroup v2 has no net_cls controller"),
    ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}}, "network.priorities: cgroup v2 has no net_prio"),
]


@pytest.mark.parametrize("res, message", V2_REFUSED, ids=[m.split(":")[0] for _, m in V2_REFUSED])
def test_v2_refuses_what_it_has_no_file_for(tmp_path, res, message):
    """runc drops these silently on cgroup v2: a container would run without the limit it asked for."""
    with pytest.raises(PyociError, match=f"linux.resources.{message}"):
        written(tmp_path, {"": "v2"}, res, v2=True)


def test_v2_takes_what_asks_for_nothing_and_writes_burst(tmp_path):
    res = {"memory": {"kernel": -1, "kernelTCP": -1, "swappiness": -1, "disableOOMKiller": False,
                      "useHierarchy": True},
           "cpu": {"burst": 1000, "idle": 1}, "blockIO": {"leafWeight": 0}, "network": {"priorities": []}}
    got = written(tmp_path, {"": "v2"}, res, v2=True, files=("cpu.max.burst", "cpu.idle"))
    assert got == {"v2/cpu.max.burst": "1000", "v2/cpu.idle": "1"}


def test_v2_check_before_update_refuses_limits_below_usage(tmp_path):
    usage = ("memory.current", str(50 << 20))
    for key in ("limit", "swap"):
        mem = {"limit": 64 << 20, "swap": 128 << 20, "checkBeforeUpdate": True, key: 40 << 20}
        with pytest.raises(PyociError, match=f"memory.{key}: {40 << 20} is not above the current usage {50 << 20}"):
            written(tmp_path, {"": key}, {"memory": mem}, v2=True, files=(usage,))
    got = written(tmp_path, {"": "ok"}, {"memory": {"limit": 64 << 20, "checkBeforeUpdate": True}}, v2=True,
                  files=(usage,))
    assert got["ok/memory.max"] == str(64 << 20)
    got = written(tmp_path, {"": "off"}, {"memory": {"limit": 40 << 20}}, v2=True, files=(usage,))
    assert got["off/memory.max"] == str(40 << 20)


def test_values_the_kernel_checks_against_each_other_are_retried_after():
    done, refused = [], {"cpu.cfs_period_us"}

    def w(controller, name, value, where):
        if name in refused:
            refused.discard(name)
            raise PyociError(where, errno.EINVAL)
        done.append(name)

    write_in_order(w, [("cpu", "cpu.cfs_period_us", 1, "cpu.period")], ("cpu", "cpu.cfs_quota_us", 1, "cpu.quota"))
    assert done == ["cpu.cfs_quota_us", "cpu.cfs_period_us"]
    refused.add("cpu.rt_period_us")
    with pytest.raises(PyociError, match="cpu.realtimePeriod"):  # nothing to write after it: the refusal stands
        write_in_order(w, [("cpu", "cpu.rt_period_us", 1, "cpu.realtimePeriod")], None)


def test_v2_swap_is_converted_as_runc_does(tmp_path):
    def swap_max(mem, current=None):
        got = written(tmp_path / str(len(list(tmp_path.iterdir()))), {"": "v2"}, {"memory": mem}, v2=True,
                      files=(("memory.max", current),) if current else ())
        return got.get("v2/memory.swap.max")

    assert swap_max({"limit": 64, "swap": 64}) == "0"  # memory+swap equal to memory: no swap
    assert swap_max({"limit": -1}) == "max" and swap_max({"limit": 64, "swap": -1}) == "max"
    assert swap_max({"limit": 64, "swap": 0}) is None  # 0 is unset
    assert swap_max({"swap": 96}, current="64") == "32"  # update: the limit in force
    assert swap_max({"swap": 96}, current="max") == "96"
    with pytest.raises(PyociError, match=r"memory.swap: 32 \(memory\+swap\) is below the memory limit 64"):
        swap_max({"limit": 64, "swap": 32})



def test_use_hierarchy_false_is_left_to_the_kernel(tmp_path):
    """Written as asked: kernels since 5.x refuse 0 (always hierarchical), and that refusal is the error."""
    assert written(tmp_path, {"memory": "m"}, {"memory": {"useHierarchy": False}}, v2=False,
                   files=("memory.use_hierarchy",)) == {"m/memory.use_hierarchy": "0"}
