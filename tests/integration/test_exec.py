"""exec: a new process inside a running container, with its namespaces, cgroup and settings."""
from __future__ import annotations

import json
import os

from conftest import wait_for

import pytest

from conftest import TEMPLATES


def running(pyoci, bundle, edit=None):
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sleep", "1000"], edit)), cid)
    return cid


@pytest.mark.parametrize("template", TEMPLATES)
def test_exec_joins_namespaces_and_cgroup_and_returns_status(pyoci, bundle, template):
    cid = running(pyoci, bundle)
    init = pyoci.state(cid)["pid"]
    proc = pyoci("exec", cid, "sh", "-c", "for n in pid mnt net; do readlink /proc/self/ns/$n; done; "
                 "cat /proc/self/cgroup | grep pids; hostname; exit 5", check=False)
    assert proc.returncode == 5, proc.stderr
    inside = proc.stdout.split()
    for kind, got in zip(("pid", "mnt", "net"), inside[:3]):
        assert got == os.readlink(f"/proc/{init}/ns/{kind}")
    with open(f"/proc/{init}/cgroup") as f:
        assert inside[3].split(":")[2] in f.read()
    assert inside[4] == template  # the hostname each template gives


def test_exec_flags_override_the_config(pyoci, bundle):
    cid = running(pyoci, bundle)
    out = pyoci("exec", "--user", "1000:1001", "--additional-gids", "7", "--env", "FOO=bar", "--cwd", "/tmp",
                "--cap", "CAP_SYS_ADMIN", "--no-new-privs", cid,
                "sh", "-c", "id -u; id -g; id -G; echo $FOO; pwd; grep -E 'CapBnd|NoNewPrivs' /proc/self/status").stdout
    lines = out.split("\n")
    assert lines[:5] == ["1000", "1001", "1001 7", "bar", "/tmp"]
    assert int(lines[5].split()[1], 16) & (1 << 21) and lines[6].split()[1] == "1"


@pytest.mark.parametrize("template", TEMPLATES)
def test_exec_process_file_detach_and_pid_file(pyoci, bundle, tmp_path, template):
    cid = running(pyoci, bundle)
    marker = "/dev/shm/exec-ran"  # the root is read-only
    spec = {"args": ["sh", "-c", f"echo $HELLO > {marker}; sleep 1000"], "cwd": "/", "env": ["HELLO=world"],
            "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(spec))
    pid_file = tmp_path / "exec.pid"
    pyoci("exec", "--process", str(tmp_path / "process.json"), "--detach", "--pid-file", str(pid_file), cid)
    pid = int(pid_file.read_text())
    assert os.path.exists(f"/proc/{pid}")
    wait_for(lambda: pyoci("exec", cid, "cat", marker, check=False).stdout, "the detached process's file")
    assert pyoci("exec", cid, "cat", marker).stdout == "world\n"
    assert pid in json.loads(pyoci("ps", "--format", "json", cid).stdout)


@pytest.mark.parametrize("template", TEMPLATES)
def test_exec_with_tty_relays(pyoci, bundle, template):
    cid = running(pyoci, bundle)
    proc = pyoci("exec", "-t", cid, "tty", stdin=open("/dev/null"))
    assert proc.stdout.strip() == "/dev/pts/0"


def test_exec_refuses_stopped_and_paused_containers_and_missing_binaries(pyoci, bundle):
    cid = running(pyoci, bundle)
    missing = pyoci("exec", cid, "nosuchcmd", check=False)
    assert missing.returncode == 255 and 'exec: "nosuchcmd": executable file not found in $PATH' in missing.stderr
    pyoci("pause", cid)
    paused = pyoci("exec", cid, "true", check=False)
    assert paused.returncode == 255 and "cannot exec in a paused container (use --ignore-paused" in paused.stderr
    pyoci("resume", cid)
    pyoci("kill", cid, "KILL")
    wait_for(lambda: pyoci.state(cid)["status"] == "stopped", "the container to stop")
    stopped = pyoci("exec", cid, "true", check=False)
    assert stopped.returncode == 255 and "cannot exec in a stopped container" in stopped.stderr


def test_exec_into_user_namespace_container(pyoci, bundle, tmp_path):
    import shutil
    import tempfile

    top = tempfile.mkdtemp(prefix="pyoci-userns-")
    os.chmod(top, 0o755)
    try:
        src = json.loads((bundle(["true"]) / "config.json").read_text())["root"]["path"]
        shutil.copytree(src, os.path.join(top, "rootfs"), symlinks=True)

        def edit(c):
            c["root"]["path"] = os.path.join(top, "rootfs")
            c["linux"]["namespaces"].append({"type": "user"})
            c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
            c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
            c["mounts"] = [m for m in c["mounts"] if m["type"] not in ("sysfs", "cgroup")]
            c["linux"]["resources"] = {}
        cid = running(pyoci, bundle, edit)
        assert pyoci("exec", cid, "cat", "/proc/self/uid_map").stdout.split() == ["0", "200000", "65536"]
        pyoci("delete", "--force", cid)
    finally:
        shutil.rmtree(top)
