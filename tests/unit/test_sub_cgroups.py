"""exec --cgroup: runc's argument forms and where they lead (pure logic on plain directories; the kernel's
side, on pyoci and runc, is tests/integration/test_exec_cgroup.py)."""
from __future__ import annotations

import pytest

from pyoci.cgroups import Cgroup
from pyoci.cgroups.sub import parse_sub_paths, within
from pyoci.errors import PyociError


@pytest.mark.parametrize("args, want", [
    ([], {}),
    (["sub"], {"": "sub"}),
    (["a/b"], {"": "a/b"}),
    (["pids:a"], {"pids": "a"}),
    (["cpu,cpuacct:x", "memory:y"], {"cpu": "x", "cpuacct": "x", "memory": "y"}),
    (["name=systemd:s"], {"name=systemd": "s"}),
])
def test_parse(args, want):
    assert parse_sub_paths(args) == want


@pytest.mark.parametrize("args, says", [
    (["a", "b"], "--cgroup a: a path without CONTROLLER: must be the only --cgroup"),
    (["pids:a", "b"], "--cgroup b: a path without CONTROLLER: must be the only --cgroup"),
    ([":x"], "--cgroup :x: empty controller name"),
    (["cpu,:x"], "--cgroup cpu,:x: empty controller name"),
    (["pids:a", "pids:b"], "--cgroup pids:b: controller pids given twice"),
])
def test_parse_refuses(args, says):
    with pytest.raises(PyociError) as e:
        parse_sub_paths(args)
    assert str(e.value) == says


@pytest.fixture
def cg(tmp_path) -> Cgroup:
    paths = {"cpu,cpuacct": tmp_path / "cpu" / "c", "pids": tmp_path / "pids" / "c", "": tmp_path / "unified" / "c"}
    for p in paths.values():
        (p / "sub").mkdir(parents=True)
    return Cgroup({k: str(v) for k, v in paths.items()}, made=[str(v) for v in paths.values()])


def test_one_path_moves_every_hierarchy(cg):
    got = within(cg, {"": "/sub"})  # a leading slash is still below the container's cgroup, as in runc
    assert got.paths == {k: v + "/sub" for k, v in cg.paths.items()}
    assert got.made == []  # exec made nothing: nothing for anyone to remove
    assert within(cg, {"": "."}).paths == cg.paths


def test_per_controller_paths_leave_the_others(cg):
    got = within(cg, {"cpuacct": "sub", "cpu": "sub"})
    assert got.paths == {**cg.paths, "cpu,cpuacct": cg.paths["cpu,cpuacct"] + "/sub"}


@pytest.mark.parametrize("subs, says", [
    ({"": "../c2"}, "--cgroup ../c2: not a sub-cgroup of the container's cgroup"),
    ({"": "sub/../../c2"}, "--cgroup sub/../../c2: not a sub-cgroup of the container's cgroup"),
    ({"memory": "sub"}, "--cgroup memory:sub: the container has no memory cgroup"),
    ({"cpu": "sub", "cpuacct": "."}, "--cgroup cpuacct:.: cpuacct shares a hierarchy (cpu,cpuacct) with a "
                                     "controller given sub"),
])
def test_within_refuses(cg, subs, says):
    with pytest.raises(PyociError) as e:
        within(cg, subs)
    assert str(e.value) == says


def test_within_needs_the_sub_cgroup_to_exist(cg):
    with pytest.raises(PyociError) as e:
        within(cg, {"pids": "missing"})
    assert str(e.value) == f"--cgroup pids:missing: no sub-cgroup {cg.paths['pids']}/missing: No such file or directory"


def test_v2_takes_the_path_alone(tmp_path):
    (tmp_path / "c" / "sub").mkdir(parents=True)
    cg = Cgroup({"": str(tmp_path / "c")})
    assert within(cg, {"": "sub"}).paths == {"": str(tmp_path / "c" / "sub")}
    with pytest.raises(PyociError) as e:
        within(cg, {"memory": "sub"})
    assert str(e.value) == "--cgroup memory:sub: cgroup v2 has one hierarchy: give the path alone"
