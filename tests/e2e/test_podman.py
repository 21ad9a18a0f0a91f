"""podman 4 runs real workloads on pyoci: the same tests run with runc, so the harness is known to be right.

Every test gets the `podman` fixture (conftest.py): podman with its own storage and config, bound to one
runtime (pyoci or runc), removing the containers it named afterwards.
"""
from __future__ import annotations

import os

import pytest

from conftest import wait_for

from .engines import RUNTIME_ROOTS, cgroup_file, in_terminal, missing

SKIP = missing("podman", "conmon", "tar")
pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.skipif(bool(SKIP), reason=SKIP)]


def detached(podman, *args: str) -> str:
    """Starts a detached container (args: options, image, command); returns its name."""
    name = podman.name()
    podman("run", "-d", "--name", name, *args)
    return name


def test_run_prints_output(podman):
    proc = podman.run(podman.image, "echo", "hi")
    assert proc.stdout == "hi\n"


def test_exit_code_passes_through(podman):
    proc = podman.run(podman.image, "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "out\n" and "err" in proc.stderr


def test_missing_command_fails_as_podman_says(podman):
    proc = podman.run(podman.image, "no-such-command", check=False)
    assert proc.returncode == 127, proc.stderr
    assert "no-such-command" in proc.stderr
    assert "OCI runtime attempted to invoke a command that was not found" in proc.stderr
    assert podman.names[-1] not in podman("ps", "-a", "--format", "{{.Names}}").stdout


def test_detached_exec_and_logs(podman):
    name = detached(podman, podman.image, "sh", "-c", "echo started; exec sleep 1000")
    wait_for(lambda: "started" in podman("logs", name).stdout, "the container's output in podman logs")
    assert podman.inspect(name, "{{.State.Status}}") == "running"
    proc = podman("exec", name, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 3", check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "sleep 1000 \n"  # the exec'd process sees the container's pid namespace
    assert podman("exec", "--user", "1000", "--env", "X=y", "--workdir", "/tmp", name,
                  "sh", "-c", "id -u; echo $X; pwd").stdout.split() == ["1000", "y", "/tmp"]


def test_exec_with_tty(podman):
    name = detached(podman, podman.image, "sleep", "1000")
    # podman exec -t wants a terminal on its side too, and copies its size to the container's
    code, out = in_terminal(["podman", "--runtime", podman.runtime, "exec", "-t", name,
                             "sh", "-c", "tty; stty size; exit 4"], env=podman.host.env, rows=33, cols=101)
    assert code == 4, out
    assert out.split("\n")[:2] == ["/dev/pts/0", "33 101"], out


def test_run_interactive_in_a_terminal(podman):
    # podman run -it on a terminal: the container gets a terminal of the same size and what we type
    code, out = in_terminal(["podman", "--runtime", podman.runtime, "run", "-it", "--rm", "--name", podman.name(),
                             f"--cgroup-parent={podman.host.cgroup_parent}", podman.image,
                             "sh", "-c", "tty; stty size; echo ready; read line; echo got=$line; exit 5"],
                            env=podman.host.env, keys=b"hello\n", after="ready", rows=33, cols=101)
    assert code == 5, out
    lines = out.split("\n")
    assert lines[:3] == ["/dev/pts/0", "33 101", "ready"], out
    assert "got=hello" in lines, out  # (the terminal echoes "hello" first)


def test_top(podman):
    name = detached(podman, podman.image, "sleep", "1000")
    podman("exec", "-d", name, "sleep", "500")
    # podman's own ps (psgo) reads /proc of the container's processes; no runtime call
    wait_for(lambda: "sleep 500" in podman("top", name).stdout, "the exec'd process to show in podman top")
    rows = [line.split(None, 1) for line in podman("top", name, "pid", "args").stdout.splitlines()[1:]]
    assert sorted(args.strip() for _, args in rows) == ["sleep 1000", "sleep 500"]
    assert ["1", "sleep 1000"] in [[pid, args.strip()] for pid, args in rows]
    # ps(1) options psgo does not know make podman run ps inside the container (a runtime exec)
    out = podman("top", name, "-ef").stdout.splitlines()
    assert out[0].split() == ["PID", "USER", "COMMAND"]  # busybox ps's columns
    assert {"sleep 1000", "sleep 500"} <= {line.split(None, 2)[2] for line in out[1:]}


def test_stop_sends_sigterm(podman):
    name = detached(podman, podman.image, "sh", "-c",
                    "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done")
    wait_for(lambda: "ready" in podman("logs", name).stdout, "the trap to be set")
    podman("stop", "-t", "30", name)
    assert podman.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 42"
    assert "got-term" in podman("logs", name).stdout


def test_kill(podman):
    name = detached(podman, podman.image, "sleep", "1000")
    podman("kill", name)
    podman("wait", name)
    assert podman.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    # a signal of choice reaches the process too
    name = detached(podman, podman.image, "sh", "-c", "trap 'exit 9' USR1; echo ready; while :; do sleep 0.1; done")
    wait_for(lambda: "ready" in podman("logs", name).stdout, "the trap to be set")
    podman("kill", "--signal", "USR1", name)
    assert podman("wait", name).stdout.strip() == "9"


def test_pause_unpause(podman):
    name = detached(podman, podman.image, "sleep", "1000")
    cid = podman.inspect(name, "{{.Id}}")
    podman("pause", name)
    assert podman.inspect(name, "{{.State.Status}}") == "paused"
    state = cgroup_file(f"{podman.host.cgroup_parent}/libpod-{cid}", "freezer", "freezer.state")
    if state:
        assert state.read_text().strip() == "FROZEN"
    podman("unpause", name)
    assert podman.inspect(name, "{{.State.Status}}") == "running"
    if state:
        assert state.read_text().strip() == "THAWED"
    assert podman("exec", name, "echo", "alive").stdout == "alive\n"


def test_restart(podman):
    name = detached(podman, podman.image, "sleep", "1000")
    pid = podman.inspect(name, "{{.State.Pid}}")
    podman("restart", "-t", "0", name)
    assert podman.inspect(name, "{{.State.Status}}") == "running"
    assert podman.inspect(name, "{{.State.Pid}}") != pid
    assert podman("exec", name, "echo", "again").stdout == "again\n"
    # and a stopped container starts again
    podman("stop", "-t", "0", name)
    podman("start", name)
    assert podman.inspect(name, "{{.State.Status}}") == "running"


def test_rm_force_removes_container_cgroup_and_runtime_state(podman):
    name = detached(podman, podman.image, "sleep", "1000")
    cid = podman.inspect(name, "{{.Id}}")
    pid = int(podman.inspect(name, "{{.State.Pid}}"))
    rel = f"{podman.host.cgroup_parent}/libpod-{cid}"
    assert cgroup_file(rel, "pids", "cgroup.procs") is not None
    assert os.path.exists(os.path.join(RUNTIME_ROOTS[podman.runtime], cid))
    podman("rm", "-f", "-t", "0", name)
    assert podman("container", "exists", name, check=False).returncode == 1
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "the container's process to go")
    assert cgroup_file(rel, "pids", "cgroup.procs") is None
    assert not os.path.exists(os.path.join(RUNTIME_ROOTS[podman.runtime], cid))


MEMORY_LIMIT = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"
PIDS_LIMIT = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"


def test_memory_limit(podman):
    assert podman.run("--memory", "32m", podman.image, "sh", "-c", MEMORY_LIMIT).stdout == f"{32 << 20}\n"


def test_pids_limit(podman):
    assert podman.run("--pids-limit", "42", podman.image, "sh", "-c", PIDS_LIMIT).stdout == "42\n"


CPU_QUOTA = ("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null"
             " || cat /sys/fs/cgroup/cpu.max")
CPU_STAT = "/sys/fs/cgroup/cpu/cpu.stat"  # v1; v2 has it at the top


def test_cpus(podman):
    assert podman.run("--cpus", "0.5", podman.image, "sh", "-c", CPU_QUOTA).stdout.split() == ["50000", "100000"]
    # the quota holds: a busy loop of ~50 ms CPU at 10 ms per 100 ms period is throttled
    out = podman.run("--cpus", "0.1", podman.image, "sh", "-c",
                     "i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; "
                     f"cat {CPU_STAT} 2>/dev/null || cat /sys/fs/cgroup/cpu.stat").stdout
    stat = dict(line.split() for line in out.splitlines())
    assert int(stat["nr_throttled"]) > 0, out


def test_read_only(podman):
    proc = podman.run("--read-only", podman.image, "sh", "-c",
                      "touch /x 2>&1; echo rc=$?; touch /tmp/ok && echo tmp-writable", check=False)
    assert "Read-only file system" in proc.stdout and "rc=1" in proc.stdout, proc.stdout + proc.stderr
    assert "tmp-writable" in proc.stdout  # podman mounts a tmpfs on /tmp of a read-only container


def test_cap_drop_all(podman):
    def caps(*opts: str) -> dict[str, int]:
        out = podman.run(*opts, podman.image, "grep", "^Cap", "/proc/self/status").stdout
        return {k.rstrip(":"): int(v, 16) for k, v in (line.split() for line in out.splitlines())}
    assert caps()["CapEff"] != 0  # podman's default set
    dropped = caps("--cap-drop", "ALL")
    assert dropped["CapEff"] == 0 and dropped["CapPrm"] == 0 and dropped["CapBnd"] == 0


def test_user(podman):
    assert podman.run("--user", "1000", podman.image, "id", "-u").stdout == "1000\n"
    assert podman.run("--user", "1000:1001", podman.image, "sh", "-c", "id -u; id -g").stdout == "1000\n1001\n"


def test_env(podman):
    out = podman.run("--env", "FOO=bar", "--env", "SPACED=a b  c", podman.image,
                     "sh", "-c", 'echo "$FOO|$SPACED"').stdout
    assert out == "bar|a b  c\n"


def test_bind_volume(podman, tmp_path):
    (tmp_path / "in").write_text("from host\n")
    out = podman.run("-v", f"{tmp_path}:/data", podman.image,
                     "sh", "-c", "cat /data/in; echo from container > /data/out").stdout
    assert out == "from host\n"
    assert (tmp_path / "out").read_text() == "from container\n"
    proc = podman.run("-v", f"{tmp_path}:/data:ro", podman.image, "sh", "-c", "echo x > /data/ro", check=False)
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr
    assert not (tmp_path / "ro").exists()


def test_tmpfs(podman):
    out = podman.run("--tmpfs", "/x", podman.image, "sh", "-c",
                     "grep ' /x ' /proc/mounts | cut -d' ' -f1,3; echo hi > /x/f && cat /x/f").stdout
    assert out == "tmpfs tmpfs\nhi\n"


def test_default_seccomp_profile_applies(podman):
    assert podman.run(podman.image, "grep", "^Seccomp:", "/proc/self/status").stdout.split() == ["Seccomp:", "2"]


def test_update_changes_live_limits(podman):
    name = detached(podman, "--memory", "32m", "--cpu-shares", "1024", podman.image, "sleep", "1000")
    podman("update", "--memory", "64m", "--cpu-shares", "512", name)
    assert podman("exec", name, "sh", "-c", MEMORY_LIMIT).stdout == f"{64 << 20}\n"
    shares = cgroup_file(f"{podman.host.cgroup_parent}/libpod-{podman.inspect(name, '{{.Id}}')}", "cpu", "cpu.shares")
    if shares:
        assert shares.read_text().strip() == "512"
    podman("update", "--cpus", "1.5", name)
    assert podman("exec", name, "sh", "-c", CPU_QUOTA).stdout.split() == ["150000", "100000"]
