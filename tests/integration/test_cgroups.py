"""Basic cgroups: the container joins its cgroup, memory/pids/cpu limits apply, delete removes only what
create made."""
from __future__ import annotations

import os
import uuid

import pytest

from conftest import cgroup_dirs

V1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def read_inside(pyoci, bundle, files, edit):
    script = "; ".join(f"cat {f}" for f in files)
    b = bundle(["sh", "-c", script], edit)
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_limits_are_applied_and_visible_inside(pyoci, bundle):
    def edit(c):
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20, "reservation": 32 << 20},
                                   "pids": {"limit": 42}, "cpu": {"shares": 512, "quota": 50000, "period": 100000}}
    if V1:
        files = ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
                 "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"]
        assert read_inside(pyoci, bundle, files, edit) == [str(64 << 20), str(32 << 20), "42", "512", "50000"]
    else:
        files = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.max"]
        assert read_inside(pyoci, bundle, files, edit) == [str(64 << 20), "42", "50000", "100000"]


def test_cgroups_path_absolute_and_relative_and_cleanup(pyoci, bundle):
    name = f"pyoci-test-{uuid.uuid4().hex[:8]}"
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(cgroupsPath=f"/{name}/inner"))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"/{name}/inner" in f.read()
    assert cgroup_dirs("inner") and all(name in d for d in cgroup_dirs("inner"))
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(name)


def test_without_cgroups_path_one_level_named_after_the_container(pyoci, bundle):
    """As runc's /<id>, one directory per hierarchy and nothing shared between containers to make and remove
    (that cost a run ~0.9 ms here), prefixed so that an id cannot name the host's own cgroup."""
    b = bundle(["sleep", "1000"])
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    with open(f"/proc/{pyoci.state(cid)['pid']}/cgroup") as f:
        paths = {line.split(":", 2)[2].strip() for line in f}
    assert paths == {f"/pyoci-{cid}"}
    dirs = cgroup_dirs(cid)
    assert dirs and all(d == f"{os.path.dirname(d)}/pyoci-{cid}" for d in dirs)
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)


def test_delete_keeps_a_parent_it_did_not_make(pyoci, bundle):
    parent = f"/sys/fs/cgroup/pids/pyoci-pre-{uuid.uuid4().hex[:8]}" if V1 else \
        f"/sys/fs/cgroup/pyoci-pre-{uuid.uuid4().hex[:8]}"
    os.mkdir(parent)
    try:
        rel = os.path.basename(parent)
        b = bundle(["true"], lambda c: c["linux"].update(cgroupsPath=f"/{rel}/child"))
        pyoci("run", "--bundle", str(b), pyoci.new_id())
        assert os.path.isdir(parent) and not os.path.exists(os.path.join(parent, "child"))
    finally:
        os.rmdir(parent)
    assert not cgroup_dirs(os.path.basename(parent))


def test_a_cgroup_that_refuses_the_process_is_named(pyoci, bundle):
    """The executor joins its cgroups itself; on cgroup v2 it is born in its cgroup (clone3), and where the
    kernel refuses that it falls back to cgroup.procs. A v2 cgroup whose child has a domain controller enabled
    takes no process of its own: the refusal names the cgroup, and create leaves nothing behind."""
    base = "/sys/fs/cgroup/unified" if V1 else "/sys/fs/cgroup"
    with open(f"{base}/cgroup.controllers") as f:  # threaded controllers (cpuset, cpu, pids) do not count
        controllers = [c for c in f.read().split() if c not in ("cpuset", "cpu", "perf_event", "pids")]
    if not controllers:
        pytest.skip(f"no domain controller on {base}: every cgroup there takes processes")
    name = f"pyoci-refuse-{uuid.uuid4().hex[:8]}"
    refusing = f"{base}/{name}"
    os.mkdir(refusing)
    try:
        with open(f"{refusing}/cgroup.subtree_control", "w") as f:
            f.write(f"+{controllers[0]}")
        os.mkdir(f"{refusing}/leaf")
        b = bundle(["true"], lambda c: c["linux"].update(cgroupsPath=f"/{name}"))
        proc = pyoci("create", "--bundle", str(b), pyoci.new_id(), check=False)
        assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert f"join cgroup {refusing}: " in proc.stderr, proc.stderr
        assert pyoci("list", "-q").stdout.split() == []
        assert cgroup_dirs(name) == [refusing]  # the v1 ones create made are gone
        with open(f"{refusing}/cgroup.procs") as f:
            assert f.read() == ""
    finally:
        os.rmdir(f"{refusing}/leaf")
        os.rmdir(refusing)


def test_memory_limit_kills_a_hog_and_small_limit_runs_true(pyoci, bundle):
    def edit(c, limit):
        c["linux"]["resources"] = {"memory": {"limit": limit, "swap": limit}}
    b = bundle(["sh", "-c", "echo hi"], lambda c: edit(c, 2 << 20))
    assert pyoci("run", "--bundle", str(b), pyoci.new_id()).stdout == "hi\n"
    b = bundle(["sh", "-c", "x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo survived"], lambda c: edit(c, 16 << 20))
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode != 0 and "survived" not in proc.stdout


def test_cgroup_mount_shows_own_cgroup(pyoci, bundle):
    if not V1:
        out = read_inside(pyoci, bundle, ["/sys/fs/cgroup/cgroup.procs"], None)
        assert out == ["1"] or "1" in out
        return
    out = read_inside(pyoci, bundle, ["/sys/fs/cgroup/pids/cgroup.procs", "/proc/self/cgroup"], None)
    assert "1" in out
    assert any(line.endswith(":/") for line in out if "pids" in line)  # the cgroup namespace is rooted at its cgroup


def test_hugetlb_limit_lands_where_the_controller_is(pyoci, bundle):
    limit = 4 << 21
    edit = lambda c: c["linux"].update(resources={"hugepageLimits": [{"pageSize": "2MB", "limit": limit}]})  # noqa
    where = "/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes" if os.path.isdir("/sys/fs/cgroup/hugetlb") else \
        "/sys/fs/cgroup/unified/hugetlb.2MB.max" if V1 else "/sys/fs/cgroup/hugetlb.2MB.max"
    assert read_inside(pyoci, bundle, [where], edit) == [str(limit)]


def test_resource_without_its_controller_is_an_error(pyoci, bundle):
    if os.path.isdir("/sys/fs/cgroup/net_cls") or not V1:
        pytest.skip("net_cls is mounted here")
    b = bundle(["true"], lambda c: c["linux"].update(resources={"network": {"classID": 1048577}}))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1
    assert "linux.resources.network.classID: the net_cls controller is not available" in proc.stderr
    assert not cgroup_dirs(cid)


def test_update_flags_and_resources_file(pyoci, bundle, tmp_path):
    if not V1:
        pytest.skip("v1 file names below")
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(resources={"memory": {"limit": 32 << 20, "swap": 32 << 20},
                                                                         "pids": {"limit": 10}}))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    # raising memory above the current memory+swap needs memsw written first
    pyoci("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "99", "--cpu-share", "256", cid)
    path = f"/proc/{pyoci.state(cid)['pid']}/root/sys/fs/cgroup"
    read = lambda f: open(f"{path}/{f}").read().strip()  # noqa: E731
    assert (read("memory/memory.limit_in_bytes"), read("memory/memory.memsw.limit_in_bytes")) == (
        str(128 << 20), str(256 << 20))
    assert read("pids/pids.max") == "99" and read("cpu/cpu.shares") == "256"
    (tmp_path / "res.json").write_text('{"pids": {"limit": 7}}')
    pyoci("update", "--resources", str(tmp_path / "res.json"), cid)
    assert read("pids/pids.max") == "7"
    proc = pyoci("update", "--resources", "-", cid, input=b'{"memory": {"limit": 67108864}}')
    assert proc.returncode == 0 and read("memory/memory.limit_in_bytes") == str(64 << 20)
    assert "c 1:3 rwm" in read("devices/devices.list")  # device rules are left as create set them
    pyoci("kill", cid, "KILL")


def test_events_stats_and_oom(pyoci, bundle):
    import json
    import subprocess

    hog = "until [ -e /dev/shm/go ]; do sleep 0.05; done; x=$(head -c 50000000 /dev/zero | tr '\\0' a); sleep 1000"
    b = bundle(["sh", "-c", hog],
               lambda c: c["linux"].update(resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}, "pids": {"limit": 50}}))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    data = json.loads(pyoci("events", "--stats", cid).stdout)
    assert data["type"] == "stats" and data["id"] == cid
    stats = data["data"]
    assert stats["memory"]["usage"]["limit"] == 16 << 20 and stats["pids"]["limit"] == 50
    assert stats["pids"]["current"] >= 1 and stats["cpu"]["usage"]["total"] > 0
    watcher = subprocess.Popen(["pyoci", "--root", str(pyoci.root), "events", "--interval", "100ms", cid],
                               stdout=subprocess.PIPE, text=True)
    try:
        kinds = {json.loads(watcher.stdout.readline())["type"]}  # watching: now let the hog go
        pyoci("exec", cid, "touch", "/dev/shm/go")
        for _ in range(200):
            line = watcher.stdout.readline()
            if not line:
                break
            kinds.add(json.loads(line)["type"])
            if "oom" in kinds:
                break
        assert kinds == {"stats", "oom"}
    finally:
        watcher.kill()
        watcher.wait()
    assert "not a duration" in pyoci("events", "--interval", "soon", cid, check=False).stderr


def test_a_limit_too_small_to_start_says_so(pyoci, bundle):
    b = bundle(["true"], lambda c: c["linux"].update(resources={"memory": {"limit": 64 << 10, "swap": 64 << 10}}))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and "OOM killer" in proc.stderr and "memory.limit is too small" in proc.stderr
    assert not cgroup_dirs(cid)
