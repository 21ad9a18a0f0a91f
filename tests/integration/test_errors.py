"""Bad input: one clear line, non-zero exit, the same line in --log, and nothing left behind."""
from __future__ import annotations

import json
import os

import pytest

from conftest import cgroup_dirs


def leftovers(pyoci, cid):
    mounts = [line for line in open("/proc/self/mountinfo") if cid in line]
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if cid.encode() in f.read():
                    procs.append(pid)
        except OSError:
            pass
    return {"state": (pyoci.root / cid).exists(), "mounts": mounts, "cgroups": cgroup_dirs(cid), "procs": procs}


CLEAN = {"state": False, "mounts": [], "cgroups": [], "procs": []}


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["linux"]["namespaces"].append({"type": "pidd"}), 'linux.namespaces[6].type: unknown value "pidd"'),
    (lambda c: c["mounts"][0].update(destination="proc"), 'mounts[0].destination: must be absolute: "proc"'),
    (lambda c: c.update(ociVersion="2.0.0"), 'ociVersion: unsupported version "2.0.0"'),
    (lambda c: c["process"].update(cwd="tmp"), 'process.cwd: must be absolute: "tmp"'),
    (lambda c: c["process"]["rlimits"].append(dict(c["process"]["rlimits"][0])), 'process.rlimits[1].type: duplicate rlimit'),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "x"}), "mounts[7] (/x): mount: No such device"),
    (lambda c: c.setdefault("hooks", {}).update(prestart=[{"path": "/bin/false"}]), "hooks.prestart[0] (/bin/false): exit status 1"),
    (lambda c: c["linux"].update(resources={"memory": {"limit": -5}}), "linux.resources.memory.limit"),
    (lambda c: c["linux"].update(sysctl={"net.no.such.key": "1"}), "linux.sysctl (net.no.such.key): open: No such file"),
])
def test_bad_config_is_one_line_and_leaves_nothing(pyoci, bundle, tmp_path, edit, message):
    b = bundle(["true"], edit)
    cid = pyoci.new_id()
    log = tmp_path / "log.json"
    proc = pyoci("--log", str(log), "--log-format", "json", "create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pyoci: create {cid}: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == lines[0] and entry["time"]
    assert leftovers(pyoci, cid) == CLEAN


def test_text_log_format(pyoci, tmp_path):
    log = tmp_path / "log.txt"
    pyoci("--log", str(log), "state", "nosuch", check=False)
    assert 'level=error msg="pyoci: state nosuch: container \\"nosuch\\" does not exist"' in log.read_text()


@pytest.mark.parametrize("cid", ["../x", "a/b", "..", "a..b", "", "x" * 1025, "sp ace"])
def test_invalid_ids_are_refused(pyoci, bundle, cid):
    proc = pyoci("create", "--bundle", str(bundle(["true"])), cid, check=False)
    assert proc.returncode == 1 and "invalid container id" in proc.stderr


def test_failing_create_container_hook_leaves_nothing(pyoci, bundle):
    b = bundle(["true"], lambda c: c.setdefault("hooks", {}).update(createContainer=[{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and "hooks.createContainer[0] (/bin/sh): exit status 3" in proc.stderr
    assert leftovers(pyoci, cid) == CLEAN


def test_missing_bundle_and_bad_json(pyoci, tmp_path):
    proc = pyoci("create", "--bundle", str(tmp_path / "nope"), "x1", check=False)
    assert proc.returncode == 1 and "config.json: not found in bundle" in proc.stderr
    (tmp_path / "config.json").write_text("{not json")
    proc = pyoci("create", "--bundle", str(tmp_path), "x2", check=False)
    assert proc.returncode == 1 and "config.json: cannot parse" in proc.stderr
    assert not (pyoci.root / "x2").exists()


def test_terminal_without_console_socket_is_refused(pyoci, bundle):
    b = bundle(["true"], lambda c: c["process"].update(terminal=True))
    proc = pyoci("create", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and "--console-socket is required" in proc.stderr


def test_systemd_cgroup_flag_is_refused_without_systemd(pyoci, bundle):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here")
    proc = pyoci("--systemd-cgroup", "create", "--bundle", str(bundle(["true"])), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and "systemd is not running" in proc.stderr


def test_an_error_from_the_executor_arrives_whole(pyoci, bundle):
    """A long program name once lost its reason at 239 bytes."""
    name = "/no/such/" + "p" * 300
    cid = pyoci.new_id()
    proc = pyoci("run", "--bundle", str(bundle([name])), cid, check=False)
    assert proc.returncode == 1
    assert proc.stderr == f'pyoci: run {cid}: process.args: exec: "{name}": No such file or directory\n'
    name = "p" * 300
    proc = pyoci("run", "--bundle", str(bundle([name])), cid, check=False)
    assert proc.stderr == f'pyoci: run {cid}: process.args: exec: "{name}": executable file not found in $PATH\n'


def test_warnings_go_to_stderr_and_the_log(pyoci, bundle, tmp_path):
    """runc spec's own template lists ambient capabilities without inheritable ones: runc and pyoci skip the
    raise the kernel would refuse, with a warning in both places."""
    def edit(c):
        c["process"]["capabilities"]["ambient"] = ["CAP_KILL"]

    log = tmp_path / "log.json"
    cid = pyoci.new_id()
    proc = pyoci("--log", str(log), "--log-format", "json", "run", "--bundle", str(bundle(["true"], edit)), cid)
    line = (f"pyoci: run {cid}: warning: process.capabilities.ambient: CAP_KILL not in both the inheritable and "
            "permitted sets: not raised")
    assert proc.stderr == line + "\n"
    entries = [json.loads(e) for e in log.read_text().splitlines()]
    assert [(e["level"], e["msg"]) for e in entries] == [("warning", line)]
