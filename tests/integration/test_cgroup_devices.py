"""Device rules against the real kernel: the cgroup v2 eBPF filter on its own (in the unified hierarchy, which
this hybrid host has too) and containers whose rules allow and deny /dev/fuse (10:229: no capability is needed
to open it, and no default rule covers it). On a hybrid host containers get the v1 rules alone; in the cgroup
v2 guest (tests/vm) the eBPF filter."""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from conftest import cgroup_dirs

FUSE = "c 10:229"


def v2_mount() -> str:
    from pyoci.cgroups.make import hierarchies

    for h in hierarchies():
        if h.v2:
            return h.mountpoint
    pytest.skip("no cgroup v2 hierarchy is mounted")


def open_in(cgroup: str, path: str, mode: str) -> subprocess.CompletedProcess:
    """Opens path for reading (<) or writing (>) from a shell that first moved itself into cgroup."""
    return subprocess.run(["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec sh -c ": {mode} {path}"'],
                          capture_output=True, text=True)


@pytest.fixture
def v2_cgroup():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    path = os.path.join(v2_mount(), f"pyoci-devtest-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    yield path
    os.rmdir(path)


def test_the_ebpf_filter_alone_allows_and_denies(v2_cgroup):
    from pyoci.cgroups.devices import program
    from pyoci.linux.shim import attach_device_filter

    attach_device_filter(program([{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}]), v2_cgroup)
    assert open_in(v2_cgroup, "/dev/null", ">").returncode == 0  # a default rule
    assert open_in(v2_cgroup, "/dev/fuse", "<").returncode == 0
    denied = open_in(v2_cgroup, "/dev/fuse", ">")
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr
    assert "Operation not permitted" in open_in(v2_cgroup, "/dev/hwrng", "<").stderr  # 10:183: no rule


def test_a_program_the_kernel_refuses_is_a_clear_error(v2_cgroup):
    from pyoci.errors import PyociError
    from pyoci.linux.shim import attach_device_filter

    with pytest.raises(PyociError, match="device filter.*Invalid argument|device filter.*Permission denied"):
        attach_device_filter(bytes(8), v2_cgroup)  # one all-zero instruction: no exit


def run_with_rules(pyoci, bundle, rules, script):
    def edit(c):
        c["linux"].setdefault("resources", {})["devices"] = rules
        c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
        for caps in c["process"]["capabilities"].values():
            caps.append("CAP_MKNOD")
    b = bundle(["sh", "-c", f"mknod /tmp/fuse c 10 229 && {script}"], edit)
    return pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)


def test_container_allowed_to_read_a_device_cannot_write_it(pyoci, bundle):
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}]
    proc = run_with_rules(pyoci, bundle, rules, ": < /tmp/fuse && echo read; (: > /tmp/fuse) || echo no-write")
    assert proc.stdout.split() == ["read", "no-write"], proc.stderr
    assert "Operation not permitted" in proc.stderr


def test_container_denied_one_letter_keeps_the_others(pyoci, bundle):
    rules = [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}]
    proc = run_with_rules(pyoci, bundle, rules, ": < /tmp/fuse && echo read; (: > /tmp/fuse) || echo no-write")
    assert proc.stdout.split() == ["read", "no-write"], proc.stderr


def test_container_without_a_rule_gets_only_the_defaults(pyoci, bundle):
    proc = run_with_rules(pyoci, bundle, [{"allow": False, "access": "rwm"}],
                          "(: < /tmp/fuse) || echo no-read; : > /dev/null && echo null")
    assert proc.stdout.split() == ["no-read", "null"], proc.stderr


def test_a_hole_in_a_wildcard_rule_is_refused_and_nothing_is_left(pyoci, bundle):
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "access": "rwm"},
             {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}]
    from pyoci.cgroups.make import hierarchies

    v2_mount()  # the rule is the eBPF program builder's to refuse
    if any("devices" in h.controllers for h in hierarchies()):
        pytest.skip("the v1 devices controller decides here: it takes the rule and ignores it, as the kernel does")
    b = bundle(["true"], lambda c: c["linux"].update(resources={"devices": rules}))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"pyoci: create {cid}: linux.resources.devices[2]: denying {FUSE} w would punch a "
                                   "hole in the wider rule c 10:* rwm, which device rules cannot express")
    assert not cgroup_dirs(cid) and pyoci("list", "-q").stdout.split() == []
