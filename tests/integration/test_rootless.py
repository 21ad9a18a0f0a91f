"""pyoci run by a real unprivileged user: a user namespace mapping the user to root, no cgroups unless they
are the user's to make, devices bound instead of made, and nothing left behind."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PYOCI, Runtime, cgroup_dirs, need_root, wait_for


@dataclass
class User:
    name: str
    uid: int
    gid: int

    def run_as(self, **env: str) -> dict:
        base = {"PATH": f"{os.path.dirname(PYOCI)}:/usr/bin:/bin", "HOME": "/"}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "env": {**base, **env}}


def _useradd(name: str) -> None:
    for _ in range(50):  # concurrent workers: useradd refuses while another holds /etc/passwd's lock
        out = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                             capture_output=True, text=True)
        if out.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"useradd {name}: {out.stderr}")


@pytest.fixture(scope="module")
def user() -> User:
    """A fresh user (with the /etc/subuid range useradd gives it), removed afterwards."""
    need_root()
    name = f"pyocirl{uuid.uuid4().hex[:8]}"
    _useradd(name)
    try:
        import pwd

        entry = pwd.getpwnam(name)
        u = User(name, entry.pw_uid, entry.pw_gid)
        probe = subprocess.run([PYOCI, "--version"], capture_output=True, text=True, **u.run_as())
        if probe.returncode != 0:
            pytest.skip(f"{PYOCI} cannot be run by an unprivileged user: {probe.stderr.strip()}")
        yield u
        assert not _processes_of(u.uid), "processes of the test user were left behind"
    finally:
        for _ in range(50):
            if subprocess.run(["userdel", name], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


@pytest.fixture
def public_rootfs(open_rootfs) -> Path:
    return Path(open_rootfs)


@pytest.fixture
def home(user) -> Path:
    """A directory of the user's own, for its bundles and its --root."""
    d = Path(tempfile.mkdtemp(prefix="pyoci-rl-home-"))
    os.chown(d, user.uid, user.gid)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def rl(user, home) -> Runtime:
    rt = Runtime(home / "state", run_as=user.run_as())
    yield rt
    rt.cleanup()
    assert not (home / "state").exists() or not os.listdir(home / "state")


def _processes_of(uid: int) -> list[int]:
    """Live processes of uid (zombies wait for this machine's slow PID 1, they hold nothing)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if fields["State"].split()[0] != "Z" and int(fields["Uid"].split()[0]) == uid:
                    found.append(int(entry))
            except (OSError, ValueError, KeyError):
                pass
    return found


def _bundle(rl: Runtime, home: Path, rootfs: Path, args: list[str], edit=None) -> Path:
    """`pyoci spec --rootless` run by the user, pointed at the shared rootfs."""
    d = home / uuid.uuid4().hex[:8]
    d.mkdir()
    os.chown(d, *(rl.run_as["user"], rl.run_as["group"]))
    rl("spec", "--rootless", "--bundle", str(d))
    cfg = json.loads((d / "config.json").read_text())
    cfg["process"].update(terminal=False, args=args)
    cfg["root"]["path"] = str(rootfs)
    if edit:
        edit(cfg)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _nothing_left(rl: Runtime, cid: str, bundle: Path, user: User) -> None:
    assert not (rl.root / cid).exists()
    assert not cgroup_dirs(cid)
    with open("/proc/self/mountinfo") as f:
        assert str(bundle) not in f.read()
    assert not _processes_of(user.uid)


def test_lifecycle_as_an_unprivileged_user(rl, user, home, public_rootfs):
    b = _bundle(rl, home, public_rootfs, ["sleep", "100"])
    cid = rl.new_id("rl")
    rl("create", "--bundle", str(b), cid, stdin=subprocess.DEVNULL)
    st = rl.state(cid)
    assert st["status"] == "created" and json.loads(rl("list", "--format", "json").stdout)[0]["owner"] == user.name
    with open(f"/proc/{st['pid']}/status") as f:
        assert f"Uid:\t{user.uid}\t" in f.read()  # on the host the init is the user, not root
    rl("start", cid)
    assert rl.state(cid)["status"] == "running"
    assert rl("exec", cid, "id").stdout.strip() == "uid=0(root) gid=0(root)"
    rl("kill", cid, "KILL")
    wait_for(lambda: rl.state(cid)["status"] == "stopped", "the container to stop")
    rl("delete", cid)
    _nothing_left(rl, cid, b, user)


def test_inside_the_user_is_root_mapped_from_the_caller(rl, user, home, public_rootfs):
    b = _bundle(rl, home, public_rootfs, ["sh", "-c", "id; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups"])
    cid = rl.new_id("rl")
    out = rl("run", "--bundle", str(b), cid, stdin=subprocess.DEVNULL).stdout.split("\n")
    assert out[0] == "uid=0(root) gid=0(root)"
    assert out[1].split() == ["0", str(user.uid), "1"] and out[2].split() == ["0", str(user.gid), "1"]
    assert out[3] == "deny"
    _nothing_left(rl, cid, b, user)


def test_host_owned_paths_stay_out_of_reach(rl, user, home, public_rootfs, tmp_path):
    host = Path(tempfile.mkdtemp(prefix="pyoci-rl-host-"))
    host.chmod(0o755)
    (host / "f").write_text("host\n")
    try:
        def edit(c):
            c["root"]["readonly"] = False
            c["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(host), "options": ["rbind", "rw"]})

        script = ("echo x > /mnt/f; echo x > /mnt/new; touch /bin/busybox; "
                  "echo 1 > /proc/sys/kernel/sysrq; ls -ln /mnt/f; echo end")
        b = _bundle(rl, home, public_rootfs, ["sh", "-c", script], edit)
        cid = rl.new_id("rl")
        out = rl("run", "--bundle", str(b), cid, stdin=subprocess.DEVNULL)
        assert out.stderr.count("Permission denied") >= 3, out.stderr
        assert "/proc/sys/kernel/sysrq" in out.stderr
        # host root is not mapped in the container: it shows as the overflow id
        assert out.stdout.split("\n")[0].split()[2:4] == ["65534", "65534"]
        assert (host / "f").read_text() == "host\n" and not (host / "new").exists()
        _nothing_left(rl, cid, b, user)
    finally:
        shutil.rmtree(host)


def test_subordinate_ids_through_newuidmap(rl, user, home, public_rootfs):
    if not shutil.which("newuidmap"):
        pytest.skip("newuidmap (Debian package uidmap) is not installed")
    start = None
    with open("/etc/subuid") as f:
        for line in f:
            name, first, count = line.strip().split(":")
            if name == user.name and int(count) >= 65536:
                start = int(first)
    if start is None:
        pytest.skip("useradd gave the test user no /etc/subuid range")
    maps = [{"containerID": 0, "hostID": user.uid, "size": 1}, {"containerID": 1, "hostID": start, "size": 65536}]

    def edit(c):
        c["linux"]["uidMappings"] = maps
        c["linux"]["gidMappings"] = [dict(maps[0], hostID=user.gid), maps[1]]
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}

    b = _bundle(rl, home, public_rootfs, ["sh", "-c", "id; cat /proc/self/uid_map"], edit)
    cid = rl.new_id("rl")
    out = rl("run", "--bundle", str(b), cid, stdin=subprocess.DEVNULL).stdout.split("\n")
    assert out[0] == "uid=1000 gid=1000 groups=5"
    assert out[2].split() == ["1", str(start), "65536"]
    _nothing_left(rl, cid, b, user)


def test_refusals_are_one_line_and_leave_nothing(rl, user, home, public_rootfs):
    no_userns = _bundle(rl, home, public_rootfs, ["true"],
                        lambda c: c["linux"].update(namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "user"],
                                                    uidMappings=[], gidMappings=[]))
    limits = _bundle(rl, home, public_rootfs, ["true"], lambda c: c["linux"].update(resources={"pids": {"limit": 10}}))
    groups = _bundle(rl, home, public_rootfs, ["true"],
                     lambda c: c["process"]["user"].update(additionalGids=[5]))
    for b, want in ((no_userns, "needs a user namespace"), (limits, "Permission denied"),
                    (groups, "process.user.additionalGids: cannot be set: setgroups is denied")):
        cid = rl.new_id("rl")
        out = rl("create", "--bundle", str(b), cid, check=False, stdin=subprocess.DEVNULL)
        assert out.returncode == 1 and want in out.stderr, out.stderr
        assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"pyoci: create {cid}: ")
        _nothing_left(rl, cid, b, user)


def test_default_root_is_the_users_runtime_dir(user, home, public_rootfs):
    runtime_dir = home / "xdg"
    runtime_dir.mkdir()
    os.chown(runtime_dir, user.uid, user.gid)
    env = user.run_as(XDG_RUNTIME_DIR=str(runtime_dir))
    rl = Runtime(home / "state", run_as=env)
    b = _bundle(rl, home, public_rootfs, ["true"])
    cid = f"rl{uuid.uuid4().hex[:12]}"
    base = [PYOCI]
    out = subprocess.run(base + ["run", "--bundle", str(b), "--keep", cid], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, **env)
    try:
        assert out.returncode == 0, out.stderr
        assert (runtime_dir / "pyoci" / cid / "state.json").exists()
        assert (runtime_dir / "pyoci").stat().st_mode & 0o777 == 0o700
    finally:
        subprocess.run(base + ["delete", "--force", cid], capture_output=True, **env)
    no_xdg = user.run_as()
    out = subprocess.run(base + ["list"], capture_output=True, text=True, **no_xdg)
    assert out.returncode == 0 and out.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    if not os.path.exists(f"/run/user/{user.uid}"):
        out = subprocess.run(base + ["run", "--bundle", str(b), cid], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, **no_xdg)
        assert out.returncode == 1
        assert out.stderr == (f"pyoci: run {cid}: --root /run/user/{user.uid}/pyoci: cannot make it "
                              "(pass --root, or set XDG_RUNTIME_DIR): Permission denied\n")
