"""exec --cgroup: the new process joins a sub-cgroup of the container's cgroup, on pyoci as on runc (the same
tests run on both); ps, kill --all and delete count the sub-cgroups as the container's."""
from __future__ import annotations

import json
import os
import uuid

import pytest

from conftest import cgroup_dirs, exited, wait_for
from pyoci.cgroups import is_v2_host
from pyoci.cgroups.make import hierarchies


@pytest.fixture
def cgname() -> str:
    """A unique top-level cgroup name for one container; whatever a failed test leaves below it goes."""
    name = f"pyoci-sub-{uuid.uuid4().hex[:10]}"
    yield name
    for d in sorted(cgroup_dirs(name), reverse=True):
        for sub, _, _ in os.walk(d, topdown=False):
            try:
                os.rmdir(sub)
            except OSError:
                pass


@pytest.fixture(params=["pyoci", "runc"])
def rt(request):
    return request.getfixturevalue(request.param)


def running(rt, bundle, cgname: str) -> str:
    cid = rt.new_id()
    rt("run", "-d", "--bundle", str(bundle(["sleep", "1000"], lambda c: c["linux"].update(cgroupsPath=f"/{cgname}"))),
       cid)
    return cid


def make_sub(cgname: str, sub: str, controllers: set[str] | None = None) -> None:
    """mkdir the sub-cgroup below the container's in every hierarchy (or those of the given controllers)."""
    for h in hierarchies():
        if controllers is not None and not controllers & set(h.controllers):
            continue
        path = os.path.join(h.mountpoint, cgname, sub)
        os.mkdir(path)
        if "cpuset" in h.controllers:  # a new v1 cpuset is empty and takes no process
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(h.mountpoint, cgname, f)) as src, open(os.path.join(path, f), "w") as dst:
                    dst.write(src.read())


def own_cgroups(out: str) -> dict[str, str]:
    """/proc/self/cgroup as controllers → path."""
    return {names: path for _, names, path in (line.split(":", 2) for line in out.splitlines())}


def test_exec_runs_in_a_sub_cgroup_that_ps_and_delete_count(cgname, rt, bundle):
    cid = running(rt, bundle, cgname)
    make_sub(cgname, "sub")
    inside = own_cgroups(rt("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup").stdout)
    assert inside and all(path.endswith("/sub") for path in inside.values()), inside
    rt("exec", "--detach", "--cgroup", "sub", cid, "sleep", "500")
    wait_for(lambda: len(json.loads(rt("ps", "--format", "json", cid).stdout)) == 2, "the exec'd process")
    pids = json.loads(rt("ps", "--format", "json", cid).stdout)
    assert len(pids) == 2, pids  # the init, and the exec'd process in the sub-cgroup
    rt("kill", "--all", cid, "KILL")
    wait_for(lambda: all(exited(p) for p in pids), "kill --all to reach into the sub-cgroup")
    rt("delete", "--force", cid)
    assert not cgroup_dirs(cgname)  # the sub-cgroups went with the container's


@pytest.mark.skipif(is_v2_host(), reason="per-controller sub-cgroups are cgroup v1's")
def test_exec_sub_cgroups_per_controller(cgname, rt, bundle):
    cid = running(rt, bundle, cgname)
    make_sub(cgname, "a", {"pids"})
    make_sub(cgname, "b", {"memory", "freezer"})
    inside = own_cgroups(rt("exec", "--cgroup", "pids:a", "--cgroup", "memory,freezer:b", cid,
                            "cat", "/proc/self/cgroup").stdout)
    assert inside["pids"].endswith("/a") and inside["memory"].endswith("/b") and inside["freezer"].endswith("/b")
    assert not inside["devices"].endswith(("/a", "/b"))  # a controller not named stays in the container's cgroup


@pytest.mark.parametrize("args", [["--cgroup", "missing"], ["--cgroup", "../escape"], ["--cgroup", "nosuch:sub"],
                                  ["--cgroup", "sub", "--cgroup", "other"]])
def test_exec_cgroup_refusals_leave_nothing(cgname, rt, bundle, args):
    cid = running(rt, bundle, cgname)
    make_sub(cgname, "sub")
    proc = rt("exec", *args, cid, "sleep", "500", check=False)
    assert proc.returncode != 0
    if os.path.basename(rt.binary) == "pyoci":
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"pyoci: exec {cid}: --cgroup "), proc.stderr
    assert len(json.loads(rt("ps", "--format", "json", cid).stdout)) == 1  # no exec'd process left behind
