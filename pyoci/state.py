"""Container state under --root: one directory per container, made atomically, and status derived at query
time from the init pid and its start time, the exec fifo and the freezer — never trusted from a file."""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import OCI_VERSION
from .errors import PyociError

ID_RE = re.compile(r"^[A-Za-z0-9_+.-]{1,1024}$")
STATE_FILE = "state.json"
FIFO = "exec.fifo"


def validate_id(container_id: str) -> None:
    if not ID_RE.match(container_id) or container_id in (".", "..") or ".." in container_id:
        raise PyociError(f"invalid container id {json.dumps(container_id)}: use 1-1024 of [A-Za-z0-9_+.-], no \"..\"")


@dataclass
class State:
    id: str
    bundle: str
    rootfs: str
    pid: int = 0
    start_time: int = 0  # /proc/<pid>/stat field 22: tells our init from a recycled pid
    created: str = ""
    owner: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # poststart/poststop for later calls
    namespaces: dict[str, str] = field(default_factory=dict)  # type → path of the namespace to join
    started: bool = False
    has_process: bool = True  # a config without process can be created, never started
    mounts: list[str] = field(default_factory=list)  # host mounts pyoci made for the container (overlay rootfs)


class Store:
    """The --root directory."""

    def __init__(self, root: str) -> None:
        self.root = root

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def claim(self, container_id: str) -> str:
        """Makes the container's directory; exactly one of two concurrent creates of one id wins."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = self.dir(container_id)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise PyociError(f"container {json.dumps(container_id)} already exists") from None
        return path

    def load(self, container_id: str) -> State:
        validate_id(container_id)
        try:
            with open(os.path.join(self.dir(container_id), STATE_FILE)) as f:
                raw = json.load(f)
            return State(**raw)
        except FileNotFoundError:
            raise PyociError(f"container {json.dumps(container_id)} does not exist") from None
        except (ValueError, TypeError) as exc:
            raise PyociError(f"container {json.dumps(container_id)}: corrupt state: {exc}") from None

    def save(self, st: State) -> None:
        path = os.path.join(self.dir(st.id), STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(st), f)
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
            raise PyociError(f"container {json.dumps(container_id)} does not exist") from None
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
    from .cgroups import Cgroup

    cg = Cgroup.from_json(st.cgroup)
    v1 = cg.path("freezer")
    try:
        if v1:
            with open(os.path.join(v1, "freezer.state")) as f:
                return f.read().strip() != "THAWED"
        if cg.v2_path:
            with open(os.path.join(cg.v2_path, "cgroup.freeze")) as f:
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


def oci_state(store: Store, st: State) -> dict[str, Any]:
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
