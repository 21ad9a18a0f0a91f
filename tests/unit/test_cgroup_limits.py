"""linux.resources → cgroup file values: the v1 and v2 mappings and runc's conversions (pure logic; the
kernel's side is covered by the integration tests)."""
from __future__ import annotations

import pytest

from pyoci.cgroups import Cgroup
from pyoci.cgroups.limits import apply, shares_to_weight
from pyoci.errors import PyociError


def written(tmp_path, paths, res, v2):
    for p in paths.values():
        (tmp_path / p).mkdir(parents=True, exist_ok=True)
    cg = Cgroup({name: str(tmp_path / p) for name, p in paths.items()})
    for name, p in paths.items():  # the files a cgroup directory would have
        for f in ("memory.max", "memory.swap.max", "memory.low", "memory.high", "cpu.weight", "cpu.max",
                  "cpuset.cpus", "pids.max", "io.max", "rdma.max"):
            (tmp_path / p / f).write_text("")
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


def test_unified_key_must_be_a_file_name(tmp_path):
    with pytest.raises(PyociError, match=r"unified\.\.\.\./x: not a cgroup file name"):
        written(tmp_path, {"": "v2"}, {"unified": {".../x": "1"}}, v2=True)


def test_missing_controller_is_named(tmp_path):
    with pytest.raises(PyociError, match="linux.resources.network.classID: the net_cls controller is not available"):
        written(tmp_path, {"memory": "mem"}, {"network": {"classID": 1}}, v2=False)
