"""The end-to-end harness: a private podman and a private containerd driving pyoci (and Debian's runc, to
prove the harness), plus the host clean-up they need. conftest.py makes them fixtures; bench/engines.py times
them.

Each pytest-xdist worker gets its own podman (containers.conf/storage.conf, graphroot, runroot, tmpdir, file
locks, events file, cgroup parent) and its own containerd (config.toml, root, state, gRPC/ttrpc sockets,
namespace, runtime root, FIFO dir), under its pytest tmp dirs (and a short /tmp/pyoci-e2e-* dir for podman's
runroot, see PodmanHost; containerd's own dir if the tmp path is too long for a socket). Session teardown stops and removes everything,
pass or fail: containers, conmon and shim processes, containerd itself, mounts, cgroups, runtime state.
Anything it had to clean up by force is reported as a warning.
"""
from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from conftest import wait_for

PYOCI = shutil.which("pyoci") or "/opt/pyoci/venv/bin/pyoci"
# runc is the reference: the same tests pass with it, so a failure with pyoci is pyoci's.
RUNTIMES = {"pyoci": PYOCI, "runc": shutil.which("runc")}
RUNTIME_ROOTS = {"pyoci": "/run/pyoci", "runc": "/run/runc"}  # the roots podman (as root) leaves them at
TIMEOUT = 120  # seconds for one engine command: generous, CI machines are slow and busy
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The pause image: PID 1 of a pod until it is killed (reaping what the pod's containers orphan, when they share
# its pid namespace); TERM and INT end it as they end Kubernetes' pause.
PAUSE = "trap 'exit 0' TERM INT; while :; do sleep 2147483647 & wait; done"


def missing(*tools: str) -> str:
    """Why these e2e tests cannot run here ("" if they can)."""
    if os.geteuid() != 0:
        return "needs root"
    absent = [t for t in tools if not shutil.which(t)]
    return f"not installed: {', '.join(absent)}" if absent else ""


def need(*tools: str) -> None:
    reason = missing(*tools)
    if reason:
        pytest.skip(reason)


def sh(argv: list[str], *, check: bool = True, timeout: float = TIMEOUT,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs argv with stdin from /dev/null; output goes through files, since a detached container (or conmon,
    or a shim) may inherit and keep open whatever pipes we would pass. A timeout kills it and counts as a
    failure (exit status -9), so teardowns with check=False always go on."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = -signal.SIGKILL  # subprocess.run killed it
            err.write(f"\n(killed: timed out after {timeout} s)".encode())
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(argv, code, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))
    if check and code != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({code}):\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def in_terminal(argv: list[str], *, env: dict[str, str] | None = None, keys: bytes = b"", after: str = "",
                rows: int = 24, cols: int = 80, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Runs argv as a session leader on a fresh pseudo-terminal of rows x cols (its controlling terminal, as
    in an interactive shell), types keys once its output shows `after`, and returns (exit status, everything
    it printed, without carriage returns). Engines given -t/--tty check that their own stdin is a terminal,
    put it in raw mode and copy its size to the container's; `script` would do, but cannot type."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:  # setsid(1) rather than a preexec_fn, which is not safe in a process with threads
        proc = subprocess.Popen(["setsid", "--ctty", "--wait", *argv], stdin=slave, stdout=slave, stderr=slave,
                                env=env)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if keys and after.encode() in out:
                os.write(master, keys)
                keys = b""
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: nothing holds the terminal's other side any more
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break  # it exited and has printed nothing since (a leftover process may hold the terminal)
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            out += f"\n(killed: timed out after {timeout} s)".encode()
    finally:
        os.close(master)
    return code, out.decode(errors="replace").replace("\r", "")


def cgroup_file(rel: str, v1_controller: str, name: str) -> Path | None:
    """The host path of cgroup file name in cgroup rel (v1 controller dir, else the unified hierarchy)."""
    for top in (f"/sys/fs/cgroup/{v1_controller}", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        p = Path(top) / rel.lstrip("/") / name
        if p.exists():
            return p
    return None


# --- host clean-up helpers (used by the session teardowns) -----------------------------------------------

def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def kill_strays(cmdline_marker: str, cgroup_marker: str) -> list[str]:
    """SIGKILLs processes whose command line mentions cmdline_marker (conmon, shims: they name our dirs and
    sockets) or whose cgroup path contains cgroup_marker (container processes). Returns what it killed."""
    killed = []
    for pid in _pids():
        cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
        cgroups = _read(f"/proc/{pid}/cgroup")
        if not cmdline and not cgroups:
            continue
        if cmdline_marker in cmdline or cgroup_marker in cgroups:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(f"{pid} {cmdline.strip()[:120]}")
            except ProcessLookupError:
                pass
    return killed


def unmount_under(base: Path) -> list[str]:
    """Lazily unmounts every mount point under base, deepest first; returns them."""
    prefix = str(base).rstrip("/") + "/"
    points = []
    for line in _read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point.startswith(prefix) or point == str(base):
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
    return points


def remove_cgroups(rel: str, expected: tuple[str, ...] = ()) -> list[str]:
    """Removes cgroup rel (relative to each hierarchy's root) and everything below it, bottom-up; returns the
    children other than the expected ones (leaks) and what could not be removed."""
    problems = []
    root = Path("/sys/fs/cgroup")
    hierarchies = [root] if (root / "cgroup.controllers").exists() else [h for h in root.iterdir() if h.is_dir()]
    for hierarchy in hierarchies:
        top = hierarchy / rel.strip("/")
        if not top.is_dir():
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda t: len(t[0]), reverse=True):
            if d != str(top) and os.path.relpath(d, top) not in expected:
                problems.append(d)  # a child left behind: the engine or runtime did not remove it
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # a process is still leaving it
            else:
                problems.append(f"{d} (busy)")
    return problems


def runtime_state_mentioning(root: str, marker: str) -> list[tuple[str, str]]:
    """(--root, id) of the containers under a runtime's root, or one level down (containerd's shim adds the
    namespace: ROOT/NAMESPACE/ID), whose state.json mentions marker."""
    found = []
    for top, _, files in os.walk(root):
        if "state.json" in files and top.count("/") - root.rstrip("/").count("/") <= 2:
            if marker in _read(os.path.join(top, "state.json")):
                found.append((os.path.dirname(top), os.path.basename(top)))
    return found


def delete_runtime_state(name: str, root: str, marker: str) -> list[str]:
    """Force-deletes what runtime name still keeps under root for us; returns what it found."""
    found = runtime_state_mentioning(root, marker) if RUNTIMES[name] else []
    for state_root, cid in found:
        sh([RUNTIMES[name], "--root", state_root, "delete", "--force", cid], check=False, timeout=60)
    return [f"{name} state {r}/{c}" for r, c in found]


def rmtree(path: Path) -> None:
    unmount_under(path)
    if not unmount_under(path):  # never rm -rf through a mount that did not go away
        shutil.rmtree(path, ignore_errors=True)


def toml_str(value: object) -> str:
    """A TOML basic string of a path (ours have no quotes, backslashes or control characters)."""
    return '"' + str(value) + '"'


# --- podman --------------------------------------------------------------------------------------------

class PodmanHost:
    """A private podman: every command gets this worker's config through the environment, and conmon (so
    also podman's exit command, `podman container cleanup`) gets it through conmon_env_vars."""

    def __init__(self, base: Path) -> None:
        self.base = base
        # podman 4.3 with a long runroot (over ~40 bytes, as under pytest-xdist's tmp dirs) waits 20 s for every
        # attached container to exit ("Exceeded conmon timeout"): runroot and tmp_dir live in a short dir.
        self.short = Path(tempfile.mkdtemp(prefix="pyoci-e2e-", dir="/tmp"))
        self.image = "localhost/pyoci-e2e/busybox:latest"
        self.cgroup_parent = f"/pyoci-e2e-{uuid.uuid4().hex[:10]}"  # own cgroup parent: no shared libpod_parent
        self.tmp = base / "tmp"
        self.env = {**os.environ, "PATH": f"{HOST_PATH}:{os.environ.get('PATH', '')}",
                    "CONTAINERS_CONF": str(base / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
                    "TMPDIR": str(self.tmp)}

    def write_config(self) -> None:
        b = self.base
        for d in ("graph", "tmp", "networks"):
            (b / d).mkdir()
        runtimes = {name: path for name, path in RUNTIMES.items() if path}
        conmon_env = [f"PATH={HOST_PATH}", f"CONTAINERS_CONF={b / 'containers.conf'}",
                      f"CONTAINERS_STORAGE_CONF={b / 'storage.conf'}", f"TMPDIR={self.tmp}"]
        q = toml_str
        (b / "containers.conf").write_text(f"""\
[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_config_dir = {q(b / "networks")}

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = {q(b / "events.log")}
tmp_dir = {q(self.short / "tmp")}
image_copy_tmp_dir = {q(self.tmp)}
lock_type = "file"
pull_policy = "never"
runtime_supports_json = [{", ".join(q(n) for n in runtimes)}]
conmon_env_vars = [{", ".join(q(v) for v in conmon_env)}]

[engine.runtimes]
{chr(10).join(f"{n} = [{q(p)}]" for n, p in runtimes.items())}
""")
        (b / "storage.conf").write_text(f"""\
[storage]
driver = "overlay"
graphroot = {q(b / "graph")}
runroot = {q(self.short / "run")}
""")

    def __call__(self, *args: str, runtime: str | None = None, check: bool = True,
                 timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        argv = ["podman"] + (["--runtime", runtime] if runtime else []) + list(args)
        if args and args[0] in ("run", "create"):
            argv.insert(argv.index(args[0]) + 1, f"--cgroup-parent={self.cgroup_parent}")
        return sh(argv, check=check, timeout=timeout, env=self.env)

    def teardown(self) -> list[str]:
        leaks = [f"container {n}" for n in self("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()]
        self("rm", "-af", "-t", "0", check=False)
        if self("ps", "-aq", check=False).stdout.strip():
            leaks.append("podman rm -af left containers")
        self("rmi", "-af", check=False)
        leaks += [f"process {p}" for p in kill_strays(str(self.base), self.cgroup_parent + "/")]
        for name, root in RUNTIME_ROOTS.items():  # podman leaves the runtimes at their default --root
            leaks += delete_runtime_state(name, root, str(self.base))
        leaks += [f"mount {m}" for m in unmount_under(self.base) + unmount_under(self.short)]
        leaks += [f"cgroup {c}" for c in remove_cgroups(self.cgroup_parent, expected=("conmon",))]
        rmtree(self.base)
        rmtree(self.short)
        return leaks


@contextmanager
def podman_serving(base: Path, rootfs: Path) -> Iterator[PodmanHost]:
    """A private podman under base with the busybox root filesystem imported as its image; torn down after,
    pass or fail (what the teardown had to clean up by force is a warning)."""
    host = PodmanHost(base)
    try:
        host.write_config()
        tarball = host.tmp / "rootfs.tar"
        sh(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
        host("import", "-q", str(tarball), host.image)
        tarball.unlink()
        yield host
    finally:
        leaks = host.teardown()
        if leaks:
            warnings.warn(f"podman e2e teardown had to clean up: {leaks}")


class Podman:
    """podman bound to one runtime, for one test; the containers it names are removed after the test."""

    def __init__(self, host: PodmanHost, runtime: str) -> None:
        self.host, self.runtime, self.image = host, runtime, host.image
        self.names: list[str] = []

    def name(self) -> str:
        n = f"e2e-{self.runtime}-{uuid.uuid4().hex[:10]}"
        self.names.append(n)
        return n

    def __call__(self, *args: str, check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        return self.host(*args, runtime=self.runtime, check=check, timeout=timeout)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """podman run --rm [args] IMAGE ... : args before the image are options, after it the command."""
        return self("run", "--rm", "--name", self.name(), *args, check=check)

    def inspect(self, name: str, fmt: str) -> str:
        return self("inspect", "--format", fmt, name).stdout.strip()

    def cleanup(self) -> None:
        if self.names:
            self("rm", "-f", "-i", "-t", "0", *self.names, check=False)


# --- containerd ----------------------------------------------------------------------------------------

class Containerd:
    """A private containerd daemon and a namespace of its own; ctr(...) runs ctr against it."""

    # plugins that would only slow the start down or look for what this host has not
    DISABLED_PLUGINS = ("io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                        "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                        "io.containerd.snapshotter.v1.aufs",
                        "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing")

    def __init__(self, base: Path, namespace: str = "") -> None:
        self.base = base
        self.sock = base / "c.sock"
        # the containers' cgroups go below /cgroup_root (ctr: /NAMESPACE/ID), which teardown removes
        self.cgroup_root = f"e2e{uuid.uuid4().hex[:10]}"
        self.namespace = namespace or self.cgroup_root
        self.image = "localhost/pyoci-e2e/busybox:e2e"
        self.fifo_dir = base / "fifo"
        self.proc: subprocess.Popen | None = None
        self.log = base / "containerd.log"

    def config(self) -> str:
        """config.toml: everything of this daemon's under base, its sockets included."""
        b = self.base
        q = toml_str
        return f"""\
version = 2
root = {q(b / "root")}
state = {q(b / "state")}
temp = {q(b / "tmp")}
disabled_plugins = [{", ".join(map(q, self.DISABLED_PLUGINS))}]

[grpc]
  address = {q(self.sock)}
[ttrpc]
  address = {q(str(self.sock) + ".ttrpc")}
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {q(b / "opt")}
"""

    def start(self) -> None:
        b = self.base
        for d in ("root", "state", "tmp", "opt", "fifo"):
            (b / d).mkdir()
        (b / "config.toml").write_text(self.config())
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(b / "config.toml")], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PATH": f"{HOST_PATH}:{os.environ.get('PATH', '')}",
                                              "TMPDIR": str(b / "tmp")})

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd exited ({self.proc.returncode}): {_read(str(self.log))[-3000:]}")
            return self.sock.exists() and self("version", check=False, timeout=30).returncode == 0
        wait_for(up, "containerd to serve", timeout=60)

    def import_images(self, archive: Path) -> None:
        """The images of an OCI archive, named self.image's repository:TAG."""
        self("images", "import", "--base-name", self.image.rsplit(":", 1)[0], str(archive))

    def argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.sock), "-n", self.namespace, *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        return sh(self.argv(*args), check=check, timeout=timeout)

    def stop(self) -> list[str]:
        leaks = []
        if self.proc and self.proc.poll() is None:
            for tid in self("task", "ls", "-q", check=False, timeout=60).stdout.split():
                leaks.append(f"task {tid}")
                self("task", "rm", "-f", tid, check=False, timeout=60)
            containers = self("containers", "ls", "-q", check=False, timeout=60).stdout.split()
            if containers:
                leaks += [f"container {c}" for c in containers]
                self("containers", "rm", *containers, check=False, timeout=60)
            images = self("images", "ls", "-q", check=False, timeout=60).stdout.split()
            if images:
                self("images", "rm", "--sync", *images, check=False, timeout=60)
            self("namespaces", "rm", self.namespace, check=False, timeout=60)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                leaks.append("containerd ignored SIGTERM")
                self.proc.kill()
                self.proc.wait(timeout=20)
        # shims outlive containerd; theirs name our socket on their command line
        leaks += [f"process {p}" for p in kill_strays(str(self.sock), f"/{self.cgroup_root}/")]
        for name in RUNTIMES:
            leaks += delete_runtime_state(name, str(self.base / f"{name}-root"), "")
        leaks += [f"mount {m}" for m in unmount_under(self.base)]
        leaks += [f"cgroup {c}" for c in remove_cgroups(self.cgroup_root)]
        return leaks


def build_oci_archive(d: Path, rootfs: Path) -> Path:
    """The busybox root filesystem as a one-layer OCI image archive (umoci) in d, tagged e2e, and the same
    layer with the pause command as its entrypoint, tagged pause."""
    layout = d / "layout"
    sh(["umoci", "init", "--layout", str(layout)])
    sh(["umoci", "new", "--image", f"{layout}:e2e"])
    sh(["umoci", "insert", "--image", f"{layout}:e2e", str(rootfs), "/"])
    sh(["umoci", "config", "--image", f"{layout}:e2e", "--config.cmd", "sh", "--config.env", f"PATH={HOST_PATH}"])
    sh(["umoci", "config", "--image", f"{layout}:e2e", "--tag", "pause", "--clear", "config.cmd",
        "--config.entrypoint", "sh", "--config.entrypoint", "-c", "--config.entrypoint", PAUSE])
    sh(["tar", "-C", str(layout), "-cf", str(d / "busybox-oci.tar"), "."])
    shutil.rmtree(layout)
    return d / "busybox-oci.tar"


@contextmanager
def serving(ctd: Containerd, archive: Path) -> Iterator[Containerd]:
    """ctd started with the archive's images; stopped and cleaned up after, pass or fail (what the teardown
    had to clean up by force is a warning)."""
    try:
        ctd.start()
        ctd.import_images(archive)
        yield ctd
    finally:
        leaks = ctd.stop()
        rmtree(ctd.base)
        if leaks:
            warnings.warn(f"{type(ctd).__name__} e2e teardown had to clean up: {leaks}")


class Ctr:
    """ctr against the session's containerd with one runtime binary (ctr run --runc-binary/--runc-root);
    the containers it names are removed after the test."""

    def __init__(self, ctd: Containerd, runtime: str) -> None:
        self.ctd, self.runtime, self.image = ctd, runtime, ctd.image
        self.runtime_root = ctd.base / f"{runtime}-root"
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = f"e2e-{self.runtime}-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        return cid

    def __call__(self, *args: str, check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        return self.ctd(*args, check=check, timeout=timeout)

    def run_argv(self, cid: str, *cmd: str, opts: tuple[str, ...] = ("--rm",)) -> list[str]:
        return self.ctd.argv("run", "--runc-binary", RUNTIMES[self.runtime], "--runc-root", str(self.runtime_root),
                             "--fifo-dir", str(self.ctd.fifo_dir), *opts, self.image, cid, *cmd)

    def run(self, cid: str, *cmd: str, opts: tuple[str, ...] = ("--rm",), check: bool = True) -> subprocess.CompletedProcess:
        return sh(self.run_argv(cid, *cmd, opts=opts), check=check)

    def status(self, cid: str) -> str:
        for line in self("task", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return fields[2]
        return ""

    def exec_argv(self, cid: str, *cmd: str, opts: tuple[str, ...] = ()) -> list[str]:
        return self.ctd.argv("task", "exec", "--fifo-dir", str(self.ctd.fifo_dir), *opts,
                             "--exec-id", f"x{uuid.uuid4().hex[:10]}", cid, *cmd)

    def exec(self, cid: str, *cmd: str, detach: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        return sh(self.exec_argv(cid, *cmd, opts=("-d",) if detach else ()), check=check)

    def state_dir(self, cid: str) -> Path:
        return self.runtime_root / self.ctd.namespace / cid  # the shim runs the runtime with --root ROOT/NAMESPACE

    def cleanup(self) -> None:
        for cid in self.ids:
            self("task", "rm", "-f", cid, check=False)
            self("containers", "rm", cid, check=False)
            if self.state_dir(cid).exists():  # the shim deletes it; be sure
                sh([RUNTIMES[self.runtime], "--root", str(self.state_dir(cid).parent), "delete", "--force", cid],
                   check=False, timeout=60)
