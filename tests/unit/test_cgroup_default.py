"""`delete --force` of a container whose state is lost finds its cgroups by name (Cgroup.default): which
directories it lists and removes, as pure logic on plain directories; the kernel's side is
tests/integration/test_damaged_state.py."""
from __future__ import annotations

import os

from pyoci.cgroups import Cgroup, make
from pyoci.cgroups.make import Hierarchy


def test_default_lists_the_containers_own_directories_and_removes_only_them(tmp_path, monkeypatch):
    pids, unified = tmp_path / "pids", tmp_path / "unified"
    monkeypatch.setattr(make, "hierarchies",
                        lambda: [Hierarchy("pids", str(pids), ["pids"], "/"), Hierarchy("", str(unified), [], "/")])
    for top in (pids, unified):
        (top / "pyoci-c1").mkdir(parents=True)
    (unified / "pyoci-other").mkdir()  # another container's
    cg = Cgroup.default("c1")
    assert cg.made == [str(pids / "pyoci-c1"), str(unified / "pyoci-c1")]
    cg.destroy()
    assert os.listdir(pids) == [] and os.listdir(unified) == ["pyoci-other"]


def test_default_of_a_container_without_cgroups_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(make, "hierarchies", lambda: [Hierarchy("pids", str(tmp_path), ["pids"], "/")])
    (tmp_path / "pyoci-c2").mkdir()
    assert Cgroup.default("c1").made == []
