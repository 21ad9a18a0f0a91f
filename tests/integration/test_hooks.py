"""Hooks: order, the state on stdin, namespaces they run in, and their failure rules."""
from __future__ import annotations

import json
import os

from conftest import wait_for

import pytest

from conftest import TEMPLATES

HOOK = "/bin/sh"


def recorder(out, name, extra=""):
    """A hook that appends its name, the state it got and its mount namespace to `out`."""
    script = f'state=$(cat); echo "{name} $(readlink /proc/self/ns/mnt) $state" >> {out}{extra}'
    return {"path": HOOK, "args": ["sh", "-c", script]}


def records(path):
    out = []
    for line in path.read_text().splitlines():
        name, ns, state = line.split(" ", 2)
        out.append((name, ns, json.loads(state)))
    return out


@pytest.mark.parametrize("template", TEMPLATES)
def test_all_hooks_run_in_order_with_state(pyoci, bundle, tmp_path, rootfs, template):
    out = tmp_path / "hooks.log"
    # createContainer runs before pivot_root, so the host path resolves; startContainer runs after it,
    # inside the container's root, so it writes through a bind mount of the same directory.

    def edit(c):
        c["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path), "options": ["rbind"]})
        c["hooks"] = {
            "prestart": [recorder(out, "prestart")],
            "createRuntime": [recorder(out, "createRuntime")],
            "createContainer": [recorder(out, "createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", 'state=$(cat); echo "startContainer $(readlink /proc/self/ns/mnt) $state" >> /out/hooks.log']}],
            "poststart": [recorder(out, "poststart")],
            "poststop": [recorder(out, "poststop")],
        }
    b = bundle(["sh", "-c", "sleep 0.2"], edit)
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    pyoci("start", cid)
    wait_for(lambda: pyoci.state(cid)["status"] == "stopped", "the container to stop")
    pyoci("delete", cid)
    got = records(out)
    assert [g[0] for g in got] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    host_ns = os.readlink("/proc/self/ns/mnt")
    container_ns = {g[0]: g[1] for g in got}
    assert container_ns["prestart"] == host_ns and container_ns["createRuntime"] == host_ns
    assert container_ns["createContainer"] != host_ns and container_ns["startContainer"] != host_ns
    statuses = {g[0]: g[2]["status"] for g in got}
    assert statuses == {"prestart": "created", "createRuntime": "created", "createContainer": "created",
                        "startContainer": "running", "poststart": "running", "poststop": "stopped"}
    assert all(g[2]["id"] == cid and g[2]["bundle"] == str(b) for g in got)
    assert all(g[2]["pid"] == pid for g in got if g[0] != "poststop")


def test_hook_env_args_and_timeout(pyoci, bundle, tmp_path):
    out = tmp_path / "env"
    b = bundle(["true"], lambda c: c.update(hooks={"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo $FOO > {out}"], "env": ["FOO=bar"]}]}))
    pyoci("run", "--bundle", str(b), pyoci.new_id())
    assert out.read_text() == "bar\n"
    b = bundle(["true"], lambda c: c.update(hooks={"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "sleep 10"], "timeout": 1}]}))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and "hooks.createRuntime[0] (/bin/sh): timed out after 1s" in proc.stderr
    assert not (pyoci.root / cid).exists()


def test_failing_poststart_fails_start_and_stops_container(pyoci, bundle):
    b = bundle(["sleep", "1000"], lambda c: c.update(hooks={"poststart": [{"path": "/bin/false"}]}))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    proc = pyoci("start", cid, check=False)
    assert proc.returncode == 1 and "hooks.poststart[0] (/bin/false): exit status 1" in proc.stderr
    assert pyoci.state(cid)["status"] == "stopped"


def test_failing_poststop_warns_and_the_rest_run(pyoci, bundle, tmp_path):
    out = tmp_path / "after"
    b = bundle(["true"], lambda c: c.update(hooks={"poststop": [
        {"path": "/bin/false"}, {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran > {out}"]}]}))
    cid = pyoci.new_id()
    pyoci("run", "--keep", "--bundle", str(b), cid)
    proc = pyoci("delete", cid)
    assert "hooks.poststop[0] (/bin/false): exit status 1" in proc.stderr
    assert out.read_text() == "ran\n"
    assert not (pyoci.root / cid).exists()


def test_a_megabyte_of_annotations_reaches_every_hook_whole(pyoci, bundle, tmp_path):
    """Kubernetes' last-applied-configuration annotation gets this large: the state on every hook's stdin is
    whole, in the runtime's hooks and in the container's (which once got a 64 KiB buffer's worth)."""
    big = "x" * (1 << 20)

    def edit(c):
        c["annotations"] = {"big": big}
        c["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path), "options": ["rbind"]})
        c["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {where}/{kind}.json"]}]
                      for kind, where in (("prestart", tmp_path), ("createRuntime", tmp_path),
                                          ("createContainer", tmp_path), ("startContainer", "/out"),
                                          ("poststart", tmp_path), ("poststop", tmp_path))}

    cid = pyoci.new_id()
    pyoci("run", "--bundle", str(bundle(["true"], edit)), cid)
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        state = json.loads((tmp_path / f"{kind}.json").read_text())
        assert state["annotations"]["big"] == big and state["id"] == cid, kind


def test_a_failing_start_container_hook_fails_start_and_stops_the_container(pyoci, bundle):
    """The hook runs in the container after `start` connected: start reads the executor until its execve,
    so the hook's failure is start's, and the container is stopped (its process never runs)."""
    b = bundle(["sleep", "1000"], lambda c: c.update(hooks={"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}]}))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    proc = pyoci("start", cid, check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"pyoci: start {cid}: hooks.startContainer[0] (/bin/sh): exit status 7\n"
    assert pyoci.state(cid)["status"] == "stopped"
    pyoci("delete", cid)
