"""`delete --force` of a container whose state is lost finds its cgroups by name (Cgroup.default): which
directories it lists and removes, as pure logic on plain directories; the kernel's side is
tests/integration/test_damaged_state.py."""
from __future__ import annotations

import os

from pyoci.cgroups import Cgroup, make
from pyoci.cgroups.make import Hierarchy


def test_default_lists_pyocis_parent_and_removes_it_only_when_empty(tmp_path, monkeypatch):
    pids, unified = tmp_path / "pids", tmp_path / "unified"
    monkeypatch.setattr(make, "hierarchies",
                        lambda: [Hierarchy("pids", str(pids), ["pids"], "/"), Hierarchy("", str(unified), [], "/")])
    for top in (pids, unified):
        (top / "pyoci" / "c1").mkdir(parents=True)
    (unified / "pyoci" / "other").mkdir()  # another container's, under the shared parent
    cg = Cgroup.default("c1")
    assert cg.made == [str(pids / "pyoci"), str(pids / "pyoci" / "c1"),
                       str(unified / "pyoci"), str(unified / "pyoci" / "c1")]
    cg.destroy()
    assert not (pids / "pyoci").exists()  # its last container: the parent goes too
    assert os.listdir(unified / "pyoci") == ["other"]  # another container's parent stays


def test_default_of_a_container_without_cgroups_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(make, "hierarchies", lambda: [Hierarchy("pids", str(tmp_path), ["pids"], "/")])
    (tmp_path / "pyoci").mkdir()
    assert Cgroup.default("c1").made == []
