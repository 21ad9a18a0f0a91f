"""linux.intelRdt's rules against a fake resctrl tree (this host has no resctrl, nor has the cgroup v2 guest):
which group, what is written to its schemata and in what order, what is compared instead, the MON group,
what delete and a failed create's undo remove. The refusal where resctrl is absent is tested for real in
tests/integration/test_spec_fields.py."""
from __future__ import annotations

import os

import pytest

from pyoci.errors import ConfigError, PyociError
from pyoci.linux import resctrl
from pyoci.spec import IntelRdt


@pytest.fixture
def root(tmp_path, monkeypatch) -> str:
    """A resctrl root as the kernel shows it: info/, the default group's schemata and tasks. As in resctrl, a
    group's directory goes with its files."""
    top = tmp_path / "resctrl"
    real = os.rmdir

    def rmdir(path):
        for name in os.listdir(path):
            (rmdir if os.path.isdir(os.path.join(path, name)) else os.unlink)(os.path.join(path, name))
        real(path)
    monkeypatch.setattr(resctrl.os, "rmdir", rmdir)
    (top / "info" / "L3").mkdir(parents=True)
    (top / "info" / "last_cmd_status").write_text("ok\n")
    (top / "schemata").write_text("    L3:0=fffff;1=fffff\n    MB:0=100;1=100\n")
    (top / "tasks").write_text("")
    (top / "mon_groups").mkdir()
    return str(top)


def existing(root: str, name: str, schemata: str, mon: bool = False) -> str:
    path = os.path.join(root, name)
    os.mkdir(path)
    with open(os.path.join(path, "schemata"), "w") as f:
        f.write(schemata)
    if mon:
        os.mkdir(os.path.join(path, "mon_groups"))
    return path


def test_a_group_of_the_containers_own_gets_the_lines_in_the_specs_order(root):
    rdt = IntelRdt(l3_cache_schema="L3:0=f;1=f", mem_bw_schema="MB:0=50", schemata=["L2:0=3", "SMBA:0=40"])
    group = resctrl.prepare(rdt, "c1", root)
    assert group == resctrl.Group(f"{root}/c1", made=True, named=False)
    with open(f"{root}/c1/schemata") as f:
        assert f.read() == "L3:0=f;1=f\nMB:0=50\nL2:0=3\nSMBA:0=40\n"
    assert group.tasks() == [f"{root}/c1/tasks"]
    resctrl.remove(resctrl.Group.from_json(group.to_json()))
    assert not os.path.exists(f"{root}/c1")


def test_no_schemata_no_write(root):
    group = resctrl.prepare(IntelRdt(), "c2", root)
    assert group.made and os.listdir(group.path) == []


def test_a_named_group_made_here_stays_at_delete(root):
    group = resctrl.prepare(IntelRdt(clos_id="gold", l3_cache_schema="L3:0=3"), "c3", root)
    assert group == resctrl.Group(f"{root}/gold", made=True, named=True)
    resctrl.remove(group)
    assert os.path.isdir(f"{root}/gold")  # other containers may share it: never removed by delete
    resctrl.remove(group, undo=True)  # ... but a failed create takes back what it made
    assert not os.path.exists(f"{root}/gold")


def test_an_existing_group_is_compared_not_written(root):
    schemata = "    L3:0=000f;1=00ff\n    MB:0=050;1=100\n"
    path = existing(root, "silver", schemata)
    group = resctrl.prepare(IntelRdt(clos_id="silver", l3_cache_schema="L3:1=ff;0=f", mem_bw_schema="MB:0=50"),
                            "c4", root)
    assert group == resctrl.Group(path, made=False, named=True)
    with open(f"{path}/schemata") as f:
        assert f.read() == schemata
    resctrl.remove(group, undo=True)
    assert os.path.isdir(path)  # not ours, even for an undo


@pytest.mark.parametrize("rdt, message", [
    (IntelRdt(clos_id="silver", l3_cache_schema="L3:0=ff"), "resctrl group silver exists with other schemata: "
                                                             "L3 domain 0 is 000f there, not ff"),
    (IntelRdt(clos_id="silver", mem_bw_schema="MB:2=10"), "MB domain 2 is absent there, not 10"),
    (IntelRdt(clos_id="silver", schemata=["L2:0=1"]), "the group has no L2 resource"),
])
def test_an_existing_group_with_other_schemata_is_refused(root, rdt, message):
    existing(root, "silver", "L3:0=000f;1=00ff\nMB:0=50;1=100\n")
    with pytest.raises(ConfigError, match=message):
        resctrl.prepare(rdt, "c5", root)


def test_closid_without_schemata_must_name_an_existing_group(root):
    with pytest.raises(ConfigError, match="linux.intelRdt.closID: no resctrl group bronze: without schemata"):
        resctrl.prepare(IntelRdt(clos_id="bronze"), "c6", root)
    assert not os.path.exists(f"{root}/bronze")
    path = existing(root, "bronze", "L3:0=1\n")
    assert resctrl.prepare(IntelRdt(clos_id="bronze"), "c6", root) == resctrl.Group(path, named=True)


def test_the_default_group(root):
    group = resctrl.prepare(IntelRdt(clos_id="/", l3_cache_schema="L3:0=fffff"), "c7", root)
    assert group.path == root and not group.made and group.tasks() == [f"{root}/tasks"]


def test_monitoring_makes_a_mon_group_named_after_the_container(root):
    os.mkdir(f"{root}/info/L3_MON")
    group = resctrl.prepare(IntelRdt(clos_id="/", enable_monitoring=True), "c8", root)
    assert group.mon == f"{root}/mon_groups/c8" and os.path.isdir(group.mon)
    assert group.tasks() == [f"{root}/tasks", f"{root}/mon_groups/c8/tasks"]
    resctrl.remove(group)
    assert not os.path.exists(group.mon) and os.path.isdir(root)


def test_a_failed_mon_group_takes_back_the_group_and_says_why(root):
    (open(f"{root}/info/last_cmd_status", "w")).write("out of RMIDs\n")
    with pytest.raises(PyociError, match=r"linux.intelRdt: make the monitoring group .*c9/mon_groups/c9 \(no resctrl "
                                         r"monitoring here\) \(resctrl: out of RMIDs\)"):
        resctrl.prepare(IntelRdt(enable_monitoring=True), "c9", root)
    assert not os.path.exists(f"{root}/c9")


def test_refused_without_resctrl():
    with pytest.raises(ConfigError, match="linux.intelRdt: this host has no resctrl filesystem mounted"):
        resctrl.prepare(IntelRdt(l3_cache_schema="L3:0=f"), "c10", None)


def test_schemata_lines_parse_as_the_kernel_prints_them():
    assert resctrl.parse_line("    L3:0=fffff;1=fffff") == ("L3", {"0": "fffff", "1": "fffff"})
    assert resctrl.mismatch(["L3:0=f"], "L3:0=0000f\n") is None
    assert resctrl.mismatch(["MB:0=50"], "MB:0=050\n") is None


def test_update_writes_the_lines_to_the_containers_group(root):
    group = resctrl.prepare(IntelRdt(l3_cache_schema="L3:0=f"), "c11", root)
    resctrl.update(group, ["L3:0=3", "MB:0=20"], root)
    with open(f"{group.path}/schemata") as f:
        assert f.read() == "L3:0=3\nMB:0=20\n"
    with pytest.raises(PyociError, match="the container has no linux.intelRdt"):
        resctrl.update(resctrl.Group(), ["L3:0=3"], root)
    with pytest.raises(PyociError, match="this host has no resctrl"):
        resctrl.update(group, ["L3:0=3"], None)
