"""Container state under --root: one directory per container, made atomically, and status derived at query
time from the init pid and its start time, the exec fifo and the freezer — never trusted from a file."""
from __future__ import annotations

import fcntl
import os
import time

from . import OCI_VERSION, jsonio
from .errors import PyociError

ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")
STATE_FILE = "state.json"
FIFO = "exec.fifo"


def default_root() -> str:
    """--root when none is given: root's /run/pyoci; anyone else's runtime dir, as runc does."""
    uid = os.geteuid()
    if uid == 0:
        return "/run/pyoci"
    return os.path.join(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}", "pyoci")


def validate_id(container_id: str) -> None:
    # "abc\n" is refused as runc refuses it (a Python regex's `$` would have let the newline through)
    if (not 0 < len(container_id) <= 1024 or not ID_CHARS.issuperset(container_id) or container_id == "."
            or ".." in container_id):
        raise PyociError(f"invalid container id {jsonio.dumps(container_id)}: use 1-1024 of [A-Za-z0-9_+.-], no \"..\"")


class State:
    """What pyoci remembers of a container between calls (a plain class: `state` must not pay for
    importing dataclasses)."""

    FIELDS = {
        "id": "", "bundle": "", "rootfs": "",
        "pid": 0, "start_time": 0,  # /proc/<pid>/stat field 22: tells our init from a recycled pid
        "created": "", "owner": "", "annotations": {},
        "cgroup": {},
        "hooks": {},  # poststart/poststop, run by later calls
        "namespaces": {},  # type → path of the namespace to join
        "has_process": True,  # a config without process can be created, never started
        "host_mounts": {},  # mounts made on the host (no mount namespace, or an image's overlay): rootfs path →
        # mounts stacked on it before create (not ours)
    }

    def __init__(self, **values: object) -> None:
        for name, default in self.FIELDS.items():
            value = values.pop(name, default if not isinstance(default, dict) else {})
            if type(value) is not type(default):  # a damaged state.json must not reach kill() as a str pid
                raise TypeError(f"{name}: {type(value).__name__} where {type(default).__name__} belongs")
            setattr(self, name, value)
        if values:
            raise TypeError(f"unknown state fields {sorted(values)}")

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.FIELDS}


class Store:
    """The --root directory."""

    def __init__(self, root: str) -> None:
        self.root = root

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def claim(self, container_id: str) -> str:
        """Makes the container's directory; exactly one of two concurrent creates of one id wins."""
        if not os.path.isdir(self.root):
            # Only the owner may see containers' state and fifos, whatever the umask (as runc makes it).
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                os.chmod(self.root, 0o700)
            except OSError as exc:
                raise PyociError(f"--root {self.root}: cannot make it (pass --root, or set XDG_RUNTIME_DIR)",
                                 exc.errno) from None
        path = self.dir(container_id)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise PyociError(f"container {jsonio.dumps(container_id)} already exists") from None
        os.chmod(path, 0o700)
        return path

    def load(self, container_id: str) -> State:
        validate_id(container_id)
        try:
            with open(os.path.join(self.dir(container_id), STATE_FILE)) as f:
                raw = jsonio.load(f)
            return State(**raw)
        except FileNotFoundError:
            raise PyociError(f"container {jsonio.dumps(container_id)} does not exist") from None
        except (ValueError, TypeError) as exc:
            raise PyociError(f"container {jsonio.dumps(container_id)}: corrupt state: {exc}") from None

    def save(self, st: State) -> None:
        path = os.path.join(self.dir(st.id), STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            jsonio.dump(st.to_json(), f)
        os.rename(tmp, path)

    def ids(self) -> list[str]:
        try:
            return sorted(e for e in os.listdir(self.root) if os.path.exists(os.path.join(self.root, e, STATE_FILE)))
        except FileNotFoundError:
            return []

    def lock(self, container_id: str) -> int:
        """An exclusive lock on the container's directory for the rest of this process's life."""
        try:
            fd = os.open(self.dir(container_id), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise PyociError(f"container {jsonio.dumps(container_id)} does not exist") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


def proc_start_time(pid: int) -> int | None:
    """Start time of pid, or None if it is gone or a zombie (a zombie container has stopped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(st: State) -> bool:
    return st.pid > 0 and proc_start_time(st.pid) == st.start_time


def frozen(st: State) -> bool:
    paths = st.cgroup.get("paths", {})
    try:
        if "freezer" in paths:
            with open(os.path.join(paths["freezer"], "freezer.state")) as f:
                return f.read().strip() != "THAWED"
        if "" in paths:
            with open(os.path.join(paths[""], "cgroup.freeze")) as f:
                return f.read().strip() == "1"
    except OSError:
        pass
    return False


def status(store: Store, st: State) -> str:
    if not alive(st):
        return "stopped"
    if os.path.exists(os.path.join(store.dir(st.id), FIFO)):
        return "created"
    if frozen(st):
        return "paused"
    return "running"


def oci_state(store: Store, st: State) -> dict[str, object]:
    """The runtime-spec State, plus runc's created/owner."""
    s = status(store, st)
    return {
        "ociVersion": OCI_VERSION,
        "id": st.id,
        "status": s,
        "pid": st.pid if s != "stopped" else 0,
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": st.owner,
        "annotations": st.annotations,
    }


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
