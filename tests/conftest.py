"""Shared fixtures: the installed pyoci binary, busybox bundles under tmp dirs, per-test --root dirs and
containers that are force-deleted after each test, pass or fail."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
PYOCI = shutil.which("pyoci") or "/opt/pyoci/venv/bin/pyoci"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory) -> Path:
    """One busybox root filesystem per test worker, shared read-only by its bundles."""
    need_root()
    if os.environ.get("PYOCI_TEST_ROOTFS"):  # made beforehand (the cgroup v2 guest, where this is slow)
        return Path(os.environ["PYOCI_TEST_ROOTFS"])
    return busybox_rootfs(tmp_path_factory.mktemp("busybox"))


def busybox_rootfs(base: Path) -> Path:
    """base/rootfs: Debian's busybox-static as a root filesystem (scripts/busybox-bundle, whose config the pyoci
    under test writes)."""
    subprocess.run([str(REPO / "scripts" / "busybox-bundle"), str(base)], check=True,
                   env={**os.environ, "PATH": f"{os.path.dirname(PYOCI)}:{os.environ['PATH']}"})
    return base / "rootfs"


@pytest.fixture
def open_rootfs(rootfs) -> str:
    """A copy of the rootfs that a mapped (non-root on the host) container root, or another user, can reach;
    with /mnt to mount on, which they could not make."""
    top = tempfile.mkdtemp(prefix="pyoci-userns-")
    os.chmod(top, 0o755)
    shutil.copytree(rootfs, os.path.join(top, "rootfs"), symlinks=True)
    os.makedirs(os.path.join(top, "rootfs", "mnt"), exist_ok=True)
    yield os.path.join(top, "rootfs")
    shutil.rmtree(top)


class Runtime:
    """pyoci (or another runtime) with its own --root; remembers ids so teardown can delete them."""

    def __init__(self, root: Path, binary: str = PYOCI, run_as: dict[str, Any] | None = None) -> None:
        self.root = root
        self.binary = binary
        self.ids: list[str] = []
        self.run_as = run_as or {}  # subprocess.run's user/group/extra_groups/env: another user calls it

    def new_id(self, prefix: str = "t") -> str:
        cid = f"{prefix}{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def __call__(self, *args: str, check: bool = True, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
        """Runs one command; output goes through files, since a detached container keeps create's stdio open."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.run([self.binary, "--root", str(self.root), *args], timeout=timeout, stdout=out,
                                  stderr=err, **{**self.run_as, **kw}).returncode
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(args, code, out.read().decode(), err.read().decode())
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def state(self, cid: str) -> dict[str, Any]:
        return json.loads(self("state", cid).stdout)

    def cleanup(self) -> None:
        for cid in self.ids:
            if self.binary == PYOCI and not (self.root / cid).exists():
                continue  # never made or already deleted (a call saved: seconds in the cgroup v2 guest)
            subprocess.run([self.binary, "--root", str(self.root), "delete", "--force", cid], capture_output=True,
                           timeout=60, **self.run_as)


@pytest.fixture
def pyoci(tmp_path) -> Runtime:
    need_root()
    rt = Runtime(tmp_path / "state")
    yield rt
    rt.cleanup()


@pytest.fixture
def runc(tmp_path) -> Runtime:
    need_root()
    binary = shutil.which("runc")
    if not binary:
        pytest.skip("runc is not installed")
    rt = Runtime(tmp_path / "runc-state", binary)
    yield rt
    rt.cleanup()


def default_config(args: list[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config that runs args without a terminal: `pyoci spec`'s, or a copy of base (another runtime's)."""
    from pyoci.defaults import default_config as pyoci_spec

    cfg = copy.deepcopy(base) if base is not None else pyoci_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    return cfg


# The `spec` templates a bundle can start from: a test parametrized over TEMPLATES runs on both.
TEMPLATES = ["pyoci", "runc"]


@pytest.fixture(scope="session")
def runc_spec(tmp_path_factory) -> dict[str, Any]:
    """The config `runc spec` writes (ambient capabilities, ociVersion 1.0.2-dev, no cgroup namespace...)."""
    binary = shutil.which("runc")
    if not binary:
        pytest.skip("runc is not installed: no `runc spec` template")
    d = tmp_path_factory.mktemp("runc-spec")
    subprocess.run([binary, "spec", "--bundle", str(d)], check=True)
    return json.loads((d / "config.json").read_text())


@pytest.fixture
def template() -> str:
    """Which runtime's `spec` the bundle fixture starts from (parametrize `template` over TEMPLATES to change it)."""
    return "pyoci"


@pytest.fixture
def bundle(request, tmp_path, rootfs, template) -> Callable[..., Path]:
    """bundle(args, edit=None): a bundle dir whose config runs args; edit(cfg) may change the config. The config
    is `pyoci spec`'s, or `runc spec`'s where the test's `template` says "runc"."""
    base = request.getfixturevalue("runc_spec") if template == "runc" else None
    count = [0]

    def make(args: list[str], edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        count[0] += 1
        d = tmp_path / f"bundle{count[0]}"
        d.mkdir()
        cfg = default_config(args, base)
        cfg["root"]["path"] = str(rootfs)
        if edit:
            edit(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
        return d

    return make


def cgroup_dirs(name: str) -> list[str]:
    """Every cgroup directory on the host named name, or pyoci-name (where a config without cgroupsPath puts
    container name's): to prove delete removed it."""
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        found.extend(os.path.join(top, d) for d in (name, f"pyoci-{name}") if d in dirs)
    return found


def create_refused(pyoci, bundle, resources: dict, message: str) -> None:
    """create with these linux.resources fails with one line carrying message and leaves no cgroup."""
    b = bundle(["true"], lambda c: c["linux"].update(resources=resources))
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and not cgroup_dirs(cid)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Polls condition until it holds; fails naming what never happened once timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def catches(pid: int, sig: int) -> bool:
    """pid has a handler for sig (a container's init ignores a signal it has none for)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(mask & 1 << (sig - 1))


def exited(pid: int) -> bool:
    """pid has ended (gone, or a zombie: PID 1 here reaps slowly)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
