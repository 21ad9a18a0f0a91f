"""pyoci as a Python library: the lifecycle through the API in this very process, the guards of its state
machine (a create at work locks its container), and a long-lived program's view: no fd, memory or child
left behind by hundreds of containers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time

import pytest

import pyoci
from conftest import PYOCI, REPO, catches, cgroup_dirs, wait_for


@pytest.fixture
def rt(tmp_path):
    runtime = pyoci.Runtime(root=str(tmp_path / "api-root"))
    yield runtime
    for c in runtime.list():
        runtime.delete(c.id, force=True)


def _readme_example() -> str:
    """The indented block of the README's "As a Python library" section (blank lines within it kept)."""
    lines = (REPO / "README.md").read_text().split("## As a Python library", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    end = next(i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith("    "))
    return textwrap.dedent("\n".join(lines[start:end]))


def test_the_readme_example(tmp_path, bundle, capfd):
    """The README's example, run as written (its paths made this test's): it prints what it says."""
    b = bundle(["sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.05; done"])
    code = (_readme_example().replace("/run/pyoci", str(tmp_path / "root")).replace("/srv/bundles/web", str(b))
            .replace("/run/web.pid", str(tmp_path / "web.pid")))
    # the init must have its TERM trap before the example signals it (pid 1 ignores a signal it has no handler for)
    code = code.replace("c.kill(signal.SIGTERM)", "wait_for(lambda: catches(c.pid, signal.SIGTERM), 'the trap')\n"
                        "c.kill(signal.SIGTERM)")
    scope = {"wait_for": wait_for, "catches": catches}
    exec(compile(code, "README.md", "exec"), scope)
    c = scope["c"]
    out = sorted(capfd.readouterr().out.splitlines())
    assert out[0] == "hi" and out[1].startswith(f"running [{c.pid}") and len(out) == 2  # and its sleep, if any
    assert int((tmp_path / "web.pid").read_text()) == c.pid
    with pytest.raises(pyoci.NotFoundError, match='container "web" does not exist'):
        scope["rt"].get("web")


def test_start_kill_wait(rt, bundle):
    b = bundle(["sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.05; done"])
    c = rt.create("api-example", str(b))
    assert c.status() == "created" and c.state()["pid"] == c.pid > 0
    c.start()
    assert c.status() == "running"
    wait_for(lambda: catches(c.pid, signal.SIGTERM), "the container's TERM trap")
    c.kill(signal.SIGTERM)
    assert c.wait(timeout=20) == 3
    assert c.status() == "stopped"
    c.delete()
    with pytest.raises(pyoci.NotFoundError, match='container "api-example" does not exist'):
        rt.get("api-example")


def test_a_handle_reads_the_state_on_its_first_call(rt, bundle):
    """Runtime.container reads nothing: an unknown id fails at the handle's first call (get fails at once),
    and its pid and bundle are read when first asked. delete with force of an unknown id succeeds, as runc's."""
    handle = rt.container("api-handle")
    with pytest.raises(pyoci.NotFoundError, match='container "api-handle" does not exist'):
        handle.state()
    b = bundle(["sleep", "100"])
    rt.create("api-handle", str(b))
    assert handle.pid == rt.get("api-handle").pid > 0 and handle.bundle == str(b)
    assert rt.container("api-handle").status() == "created"
    rt.container("api-nothing").delete(force=True)
    with pytest.raises(pyoci.NotFoundError, match='container "api-nothing" does not exist'):
        rt.container("api-nothing").delete()


def test_errors_are_typed(rt, bundle):
    with pytest.raises(pyoci.ConfigError) as bad:
        rt.create("api-bad", str(bundle(["true"], lambda c: c["process"].update(cwd="relative"))))
    assert bad.value.path == "process.cwd"
    c = rt.create("api-typed", str(bundle(["sleep", "1000"])))
    with pytest.raises(pyoci.WrongStateError) as wrong:
        c.delete()
    assert (wrong.value.status, wrong.value.operation) == ("created", "delete")
    assert str(wrong.value) == "cannot delete container api-typed that is not stopped: created"
    c.delete(force=True)
    with pytest.raises(pyoci.KernelError) as kernel:
        rt.create("api-kernel", str(bundle(["/no/such/program"])))
    assert kernel.value.errno == 2 and str(kernel.value) == (
        'process.args: exec: "/no/such/program": No such file or directory')


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_two_hundred_containers_leave_no_fd_memory_or_child(rt, bundle, record_property):
    """A long-lived program creates, runs and deletes container after container: its fd count stays the
    same and its memory flat (measured after a warm-up of 20)."""
    b = str(bundle(["true"]))
    inits = []

    def one(i: int) -> None:
        c = rt.create(f"api-many-{i}", b)
        inits.append(c.pid)
        c.start()
        assert c.wait(timeout=20) == 0
        c.delete()

    for i in range(20):
        one(i)
    fds, rss = _fds(), _rss_kib()
    for i in range(20, 200):
        one(i)
    grown = _rss_kib() - rss
    record_property("fds", f"{fds} -> {_fds()}")
    record_property("rss_growth_kib", grown)
    print(f"fds {fds} -> {_fds()}, RSS {rss} KiB -> +{grown} KiB over 180 containers")
    assert _fds() == fds
    assert grown < 2048, f"RSS grew {grown} KiB over 180 containers"
    assert rt.list() == [] and not os.listdir(rt.root)
    for pid in inits:  # every init (our child: the executor forks it with CLONE_PARENT) was reaped by wait()
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _held_create(bundle, tmp_path, cid: str, root: str) -> tuple[subprocess.Popen, object]:
    """A create held in its createRuntime hook until the returned release() is called."""
    gate = tmp_path / f"{cid}.gate"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"i=0; while [ ! -e {gate} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"]}
    b = bundle(["sleep", "1000"], lambda c: c.update(hooks={"createRuntime": [hook]}))
    proc = subprocess.Popen([PYOCI, "--root", root, "create", "--bundle", str(b), cid],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, gate.touch


def test_a_create_at_work_is_creating_and_refuses_the_rest(pyoci, bundle, tmp_path):
    """The lock is taken when the id is claimed and held until the init is ready: state says "creating",
    every change fails at once in one line (a plain delete used to remove the state under the create)."""
    cid = pyoci.new_id()
    proc, release = _held_create(bundle, tmp_path, cid, str(pyoci.root))
    try:
        wait_for(lambda: (pyoci.root / cid / "state.json").exists() and pyoci.state(cid)["status"] == "creating",
                 "the create to claim its id")
        for args in (["delete", cid], ["delete", "--force", cid], ["kill", cid, "KILL"], ["start", cid],
                     ["pause", cid], ["exec", cid, "true"]):
            refused = pyoci(*args, check=False)
            assert refused.returncode in (1, 255) and refused.stderr.endswith(f": container {cid} is being created\n"), args
        assert [c["status"] for c in json.loads(pyoci("list", "--format", "json").stdout)] == ["creating"]
    finally:
        release()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert pyoci.state(cid)["status"] == "created"
    pyoci("delete", "--force", cid)


def test_a_create_held_inside_its_cgroup_step(pyoci, bundle, tmp_path):
    """strace stalls the create's mkdir of its cgroup: the container is "creating" there too, and a delete
    racing it is refused; once the create goes on, it ends with a whole container."""
    if not subprocess.run(["which", "strace"], capture_output=True).returncode == 0:
        pytest.skip("strace is not installed")
    cid = pyoci.new_id()
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(cgroupsPath=f"/pyoci-held/{cid}"))
    target = next(p for p in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup") if os.path.isdir(p))
    argv = ["strace", "-qq", "-o", "/dev/null", "-P", f"{target}/pyoci-held/{cid}",
            "-e", "trace=mkdir,mkdirat", "-e", "inject=mkdir,mkdirat:delay_enter=3000000",
            PYOCI, "--root", str(pyoci.root), "create", "--bundle", str(b), cid]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (pyoci.root / cid / "state.json").exists(), "the create to claim its id")
        assert pyoci.state(cid)["status"] == "creating"
        refused = pyoci("delete", cid, check=False)
        assert refused.returncode == 1 and "is being created" in refused.stderr
    finally:
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert pyoci.state(cid)["status"] == "created" and cgroup_dirs(cid)
    pyoci("delete", "--force", cid)
    assert not cgroup_dirs(cid)
    for top in cgroup_dirs("pyoci-held"):
        os.rmdir(top)


def test_an_operation_waits_for_another_that_holds_the_lock(rt, bundle):
    """Two changes of one container at once: the second waits for the first (a kill during a delete finds
    the container gone, never half-deleted)."""
    c = rt.create("api-race", str(bundle(["sleep", "1000"])))
    results = []

    def kill() -> None:
        try:
            rt.get("api-race").kill(signal.SIGKILL)
            results.append("killed")
        except pyoci.PyociError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=kill) for _ in range(4)] + [threading.Thread(target=lambda: c.delete(force=True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert set(results) <= {"killed", "NotFoundError", "WrongStateError"} and len(results) == 4
    with pytest.raises(pyoci.NotFoundError):
        rt.get("api-race")


def test_import_pyoci_is_cheap():
    """The command line imports the package first: the API's names cost nothing until used."""
    code = "import sys, pyoci; print(sorted(m for m in sys.modules if m.startswith('pyoci')))"
    out = subprocess.run([os.path.join(os.path.dirname(os.path.realpath(PYOCI)), "python3"), "-c", code],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pyoci']"
    started = time.monotonic()
    assert pyoci.Runtime and time.monotonic() - started < 5
