"""create / start / state / kill / delete / run / list, as runc users drive them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

import pytest

from conftest import catches, cgroup_dirs, exited, TEMPLATES, wait_for


# pid 1 of a pid namespace ignores signals it has no handler for: the container traps TERM itself.
TRAPS_TERM = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]


def wait_status(rt, cid, status):
    wait_for(lambda: rt.state(cid)["status"] == status, f"{cid} to be {status}")


@pytest.mark.parametrize("template", TEMPLATES)
def test_run_prints_and_returns_exit_status(pyoci, bundle, template):
    b = bundle(["sh", "-c", "echo hello from $(hostname); exit 7"])
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 7
    assert proc.stdout == f"hello from {template}\n"  # each template names the host after its runtime


@pytest.mark.parametrize("template", TEMPLATES)
def test_lifecycle_statuses_and_state_json(pyoci, bundle, tmp_path, template):
    b = bundle(["sleep", "1000"], lambda c: c.update(annotations={"a": "b"}))
    cid = pyoci.new_id()
    pid_file = tmp_path / "pid"
    pyoci("create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    st = pyoci.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == str(b) and st["annotations"] == {"a": "b"}
    assert st["ociVersion"] == "1.3.0" and st["owner"] == "" and st["created"]  # owner: runc's state leaves it
    listed = [c for c in json.loads(pyoci("list", "--format", "json").stdout) if c["id"] == cid]
    assert listed == [{**st, "owner": "root"}]  # as runc's list: who made it
    assert int(pid_file.read_text()) == st["pid"] > 0
    # The init is parked: its command has not run yet.
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()
    denied = pyoci("delete", cid, check=False)
    assert denied.returncode != 0 and "not stopped: created" in denied.stderr
    pyoci("start", cid)
    assert pyoci.state(cid)["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().startswith(b"sleep\x001000")
    again = pyoci("start", cid, check=False)
    assert again.returncode != 0 and "running" in again.stderr
    pyoci("kill", cid, "KILL")
    wait_status(pyoci, cid, "stopped")
    assert pyoci.state(cid)["pid"] == 0
    assert pyoci("kill", cid, "TERM", check=False).returncode != 0
    pyoci("delete", cid)
    gone = pyoci("state", cid, check=False)
    assert gone.returncode != 0 and "does not exist" in gone.stderr
    assert not cgroup_dirs(cid)


@pytest.mark.parametrize("sig", ["TERM", "SIGTERM", "15", "term"])
def test_kill_accepts_names_and_numbers(pyoci, bundle, sig):
    b = bundle(TRAPS_TERM)
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    wait_for(lambda: catches(pid, signal.SIGTERM), "the container's TERM trap")
    assert pyoci("kill", cid, sig).returncode == 0
    wait_status(pyoci, cid, "stopped")


def test_kill_default_is_term_and_bad_signal_is_refused(pyoci, bundle):
    b = bundle(TRAPS_TERM)
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    wait_for(lambda: catches(pid, signal.SIGTERM), "the container's TERM trap")
    bad = pyoci("kill", cid, "NOPE", check=False)
    assert bad.returncode != 0 and 'invalid signal "NOPE"' in bad.stderr
    pyoci("kill", cid)
    wait_status(pyoci, cid, "stopped")


@pytest.mark.parametrize("template", TEMPLATES)
def test_kill_all_signals_every_process(pyoci, bundle, tmp_path, template):
    """Each child records the TERM it gets; the init has no handler, so (as pid 1) it ignores TERM: only
    --all reaches the children, and each must report."""
    (tmp_path / "child.sh").write_text(
        "trap 'echo $$ > /out/got-$$; exit 0' TERM; echo $$ > /out/up-$$; while true; do sleep 0.05; done\n")
    script = "for i in 1 2 3; do sh /out/child.sh & done; while true; do sleep 1; done"

    def edit(c):
        c["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path), "options": ["rbind"]})

    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sh", "-c", script], edit)), cid)
    wait_for(lambda: len(list(tmp_path.glob("up-*"))) == 3, "the three children to trap TERM")
    pyoci("kill", "--all", cid, "TERM")
    ups = sorted(p.name[3:] for p in tmp_path.glob("up-*"))
    wait_for(lambda: sorted(p.name[4:] for p in tmp_path.glob("got-*")) == ups, "each child to get TERM")
    assert pyoci.state(cid)["status"] == "running"  # the init ignored it
    pyoci("kill", "--all", cid, "KILL")
    wait_status(pyoci, cid, "stopped")


def test_kill_of_a_stopped_container_as_runc(pyoci, bundle):
    """Without --all: runc's `container not running` (containerd matches those words); with --all: what the
    init left in the cgroup (here a child of an init without its own pid namespace) is signalled, and the
    call succeeds, as containerd's shim expects after the init exits."""
    def no_pidns(c):
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "pid"]

    b = bundle(["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"], no_pidns)
    cid = pyoci.new_id()
    pyoci("run", "--keep", "--bundle", str(b), cid)
    assert pyoci.state(cid)["status"] == "stopped"
    left = json.loads(pyoci("ps", "--format", "json", cid).stdout)
    assert len(left) == 1 and open(f"/proc/{left[0]}/cmdline", "rb").read().startswith(b"sleep")
    refused = pyoci("kill", cid, "KILL", check=False)
    assert refused.returncode == 1 and refused.stderr == f"pyoci: kill {cid}: container not running\n"
    pyoci("kill", "--all", cid, "KILL")
    wait_for(lambda: exited(left[0]), "kill --all to kill the init's child")
    pyoci("kill", "--all", cid, "KILL")  # again, with nothing left: still a success
    pyoci("delete", cid)


def test_delete_of_a_stopped_container_kills_what_its_init_left(pyoci, bundle):
    """The init (without a pid namespace of its own) has exited, a child of it lives on in the cgroup:
    delete, as runc's, kills it rather than leave it, and removes the cgroup it kept busy."""
    def no_pidns(c):
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "pid"]

    cid = pyoci.new_id()
    pyoci("run", "--keep", "--bundle", str(bundle(["sh", "-c", "sleep 1000 >/dev/null 2>&1 &"], no_pidns)), cid)
    left = json.loads(pyoci("ps", "--format", "json", cid).stdout)
    assert len(left) == 1 and pyoci.state(cid)["status"] == "stopped"
    pyoci("delete", cid)
    wait_for(lambda: exited(left[0]), "delete to kill the init's child")
    assert not (pyoci.root / cid).exists()
    assert not cgroup_dirs(cid)


@pytest.mark.parametrize("template", TEMPLATES)
def test_delete_force_removes_a_running_container(pyoci, bundle, template):
    b = bundle(["sleep", "1000"])
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    pyoci("delete", "--force", cid)
    assert not os.path.exists(f"/proc/{pid}/cmdline") or b"sleep" not in open(f"/proc/{pid}/cmdline", "rb").read()
    assert not (pyoci.root / cid).exists()
    assert not cgroup_dirs(cid)


def test_delete_force_of_unknown_container_succeeds(pyoci):
    assert pyoci("delete", "--force", "nosuchcontainer").returncode == 0
    assert pyoci("delete", "nosuchcontainer", check=False).returncode != 0


def test_list_formats(pyoci, bundle):
    b = bundle(["sleep", "1000"])
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    assert pyoci("list", "-q").stdout.split() == [cid]
    listed = json.loads(pyoci("list", "--format", "json").stdout)
    assert listed[0]["id"] == cid and listed[0]["status"] == "created"
    table = pyoci("list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"] and table[1].split()[2] == "created"


def test_concurrent_creates_of_one_id_exactly_one_wins(pyoci, bundle):
    b = bundle(["sleep", "1000"])
    cid = pyoci.new_id()
    results = []

    def create():
        results.append(pyoci("create", "--bundle", str(b), cid, check=False))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.returncode for r in results) == [0, 1, 1, 1]
    assert all("already exists" in r.stderr for r in results if r.returncode)
    assert pyoci.state(cid)["status"] == "created"


def test_create_without_process_cannot_start(pyoci, bundle):
    b = bundle(["true"], lambda c: c.pop("process"))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    assert pyoci.state(cid)["status"] == "created"
    refused = pyoci("start", cid, check=False)
    assert refused.returncode != 0 and "config.json: process: required" in refused.stderr
    pyoci("delete", "--force", cid)


def test_foreground_run_forwards_signals(pyoci, bundle):
    b = bundle(["sh", "-c", "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done"])
    proc = subprocess.Popen(["pyoci", "--root", str(pyoci.root), "run", "--bundle", str(b), pyoci.new_id()],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 42


def test_run_keep_leaves_a_stopped_container(pyoci, bundle):
    b = bundle(["true"])
    cid = pyoci.new_id()
    pyoci("run", "--keep", "--bundle", str(b), cid)
    assert pyoci.state(cid)["status"] == "stopped"
    pyoci("delete", cid)


def test_state_of_running_container_after_start_reports_running(pyoci, bundle):
    b = bundle(["sleep", "1000"])
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    pyoci("start", cid)
    assert pyoci.state(cid)["status"] == "running"


def test_spec_writes_config_and_refuses_to_overwrite(pyoci, tmp_path):
    pyoci("spec", "--bundle", str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["ociVersion"] == "1.3.0" and cfg["root"]["path"] == "rootfs"
    again = pyoci("spec", "--bundle", str(tmp_path), check=False)
    assert again.returncode != 0 and "exists" in again.stderr
    rootless = tmp_path / "rl"
    rootless.mkdir()
    pyoci("spec", "--rootless", "--bundle", str(rootless))
    cfg = json.loads((rootless / "config.json").read_text())
    assert {"type": "user"} in cfg["linux"]["namespaces"] and cfg["linux"]["uidMappings"]


def test_version_and_features(pyoci):
    assert "pyoci version" in pyoci("--version").stdout
    feats = json.loads(pyoci("features").stdout)
    assert feats["ociVersionMax"] == "1.3.0" and "pid" in feats["linux"]["namespaces"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_pause_resume_and_ps(pyoci, bundle, template):
    b = bundle(["sh", "-c", "while true; do sleep 0.05; done"])
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    assert pid in json.loads(pyoci("ps", "--format", "json", cid).stdout)
    table = pyoci("ps", cid).stdout.splitlines()
    assert "PID" in table[0] and any(str(pid) in row.split() for row in table[1:])
    pyoci("pause", cid)
    assert pyoci.state(cid)["status"] == "paused"
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().split(") ")[1][0] in "DS"  # frozen tasks sleep in the freezer
    assert "cannot pause a container in the paused state" in pyoci("pause", cid, check=False).stderr
    pyoci("resume", cid)
    assert pyoci.state(cid)["status"] == "running"
    pyoci("pause", cid)
    pyoci("delete", "--force", cid)  # a paused container is thawed to be killed
    assert not (pyoci.root / cid).exists()


def test_list_names_an_owner_without_a_user_name_by_uid(pyoci, bundle):
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(bundle(["sleep", "1000"])), cid)
    os.chown(pyoci.root / cid, 54329, -1)  # a uid /etc/passwd does not name
    assert [c["owner"] for c in json.loads(pyoci("list", "--format", "json").stdout)] == ["#54329"]
    assert " #54329\n" in pyoci("list").stdout
    pyoci("delete", "--force", cid)
