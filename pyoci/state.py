"""Container state under --root: one directory per container, and status derived at query time from the
processes themselves — the creating runtime, the init and its start time, the start socket, the freezer —
never trusted from a file.

A container's directory appears whole: create makes it under a temporary name, locks it, writes the first
state and renames it into place, so every other command sees either no container or one it can lock. The
lock (flock on the directory) is held by create until the container is ready, and by every command that
changes a container. create's later saves swap a new file in by name (linux/shim.py's replace), so a reader
gets one whole state or the next; once the container is ready its state file does not change.
"""
from __future__ import annotations

import fcntl
import posix
import time

from . import OCI_VERSION, jsonio
from .errors import EEXIST, ENOTEMPTY, NotFoundError, PyociError
from .linux.files import read_bytes, read_text, write
from .linux.fs import abspath, exists, getenv, isdir, makedirs

TYPE_CHECKING = False  # the short commands read this module: no typing import for an annotation
if TYPE_CHECKING:
    from typing import Callable

ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")
STATE_FILE = "state.json"
START_SOCKET = "start.sock"  # create's init listens here until `start` connects
CLAIMING = "@claim-"  # a container directory being made (no id has an "@")

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"


def default_root() -> str:
    """--root when none is given: root's /run/pyoci; anyone else's runtime dir, as runc does."""
    uid = posix.geteuid()
    if uid == 0:
        return "/run/pyoci"
    return f"{getenv('XDG_RUNTIME_DIR') or f'/run/user/{uid}'}/pyoci"


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
        "creator": 0, "creator_start": 0,  # the create that is making it (alive: "creating")
        "ready": False,  # create saw the init ready: from here on the init's life says the status
        "pid": 0, "start_time": 0,  # /proc/<pid>/stat field 22: tells our init from a recycled pid
        "created": "", "annotations": {},
        "cgroup": {},
        "hooks": {},  # poststart/poststop, run by later calls
        "namespaces": {},  # type → path of the namespace to join
        "has_process": True,  # a config without process can be created, never started
        "host_mounts": {},  # mounts made on the host (no mount namespace, or an image's overlay): rootfs path →
        # mounts stacked on it before create (not ours)
        "net_devices": {},  # linux.netDevices moved in: host name → name inside (who holds an interface)
        "resctrl": {},  # linux.intelRdt: the groups create made or joined (pyoci/linux/resctrl.py's Group)
    }

    def __init__(self, **values: object) -> None:
        values.pop("owner", None)  # in state files of pyoci before `list` looked the owner up (Container.owner)
        for name, default in self.FIELDS.items():
            value = values.pop(name, default if not isinstance(default, dict) else {})
            if type(value) is not type(default):  # a damaged state.json must not reach kill() as a str pid
                raise TypeError(f"{name}: {type(value).__name__} where {type(default).__name__} belongs")
            setattr(self, name, value)
        if values:
            raise TypeError(f"unknown state fields {sorted(values)}")

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.FIELDS}


class Lock:
    """An exclusive lock on a container's directory, released by release() (or the process's end)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            posix.close(self.fd)
            self.fd = -1


class Store:
    """The --root directory."""

    def __init__(self, root: str) -> None:
        self.root = root

    def dir(self, container_id: str) -> str:
        return f"{self.root}/{container_id}"

    def _make_root(self) -> None:
        if not isdir(self.root):
            # Only the owner may see containers' state and sockets, whatever the umask (as runc makes it).
            try:
                makedirs(abspath(self.root), 0o700)
                posix.chmod(self.root, 0o700)
            except OSError as exc:
                raise PyociError(f"--root {self.root}: cannot make it (pass --root, or set XDG_RUNTIME_DIR)",
                                 exc.errno) from None

    def claim(self, st: State) -> Lock:
        """Makes the container's directory with its first state, locked; exactly one of two concurrent creates
        of one id wins."""
        self._make_root()
        tmp = f"{self.root}/{CLAIMING}{posix.getpid()}-{time.monotonic_ns()}"
        posix.mkdir(tmp, 0o700)
        try:
            posix.chmod(tmp, 0o700)
            fd = posix.open(tmp, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            _write_state(tmp, st)
            try:
                posix.rename(tmp, self.dir(st.id))
            except OSError as exc:
                posix.close(fd)
                if exc.errno in (EEXIST, ENOTEMPTY):  # the id is taken
                    raise PyociError(f"container {jsonio.dumps(st.id)} already exists") from None
                raise
        except BaseException:
            remove_dir(tmp)
            raise
        return Lock(fd)

    def load(self, container_id: str) -> State:
        validate_id(container_id)
        name = jsonio.dumps(container_id)
        try:
            raw = jsonio.loads(read_text(f"{self.dir(container_id)}/{STATE_FILE}"))
            st = State(**raw)
        except FileNotFoundError:
            raise not_found(container_id) from None
        except OSError as exc:
            raise PyociError(f"container {name}: cannot read its state", exc.errno) from None
        except (ValueError, TypeError) as exc:
            raise PyociError(f"container {name}: corrupt state: {exc}") from None
        if st.id != container_id:
            raise PyociError(f"container {name}: corrupt state: it names container {jsonio.dumps(st.id)}")
        return st

    def save(self, st: State) -> None:
        """The container's next state, which create writes as it goes (it has loaded the shim already)."""
        from .linux.shim import replace

        _write_state(self.dir(st.id), st, replace)

    def ids(self) -> list[str]:
        try:
            return sorted(e for e in posix.listdir(self.root) if not e.startswith(CLAIMING)
                          and exists(f"{self.root}/{e}/{STATE_FILE}"))
        except FileNotFoundError:
            return []

    def lock(self, container_id: str, wait: bool = True) -> Lock | None:
        """The container's lock: waits for it (wait=False: None if another process holds it). A container
        deleted while we waited does not exist."""
        validate_id(container_id)
        try:
            fd = posix.open(self.dir(container_id), posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except FileNotFoundError:
            raise not_found(container_id) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            posix.close(fd)
            return None
        if posix.fstat(fd).st_nlink == 0:
            posix.close(fd)
            raise not_found(container_id)
        return Lock(fd)

    def owner(self, container_id: str) -> str:
        """Who made the container (the owner of its directory), by name, as runc's `list` shows it ("#UID"
        for a uid without one)."""
        import pwd

        try:
            uid = posix.stat(self.dir(container_id)).st_uid
        except FileNotFoundError:
            raise not_found(container_id) from None
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return f"#{uid}"


def not_found(container_id: str) -> NotFoundError:
    return NotFoundError(f"container {jsonio.dumps(container_id)} does not exist")


def _write_state(directory: str, st: State, rename: Callable[[str, str], None] = posix.rename) -> None:
    path = f"{directory}/{STATE_FILE}"
    tmp = path + ".tmp"
    write(tmp, jsonio.dumps(st.to_json()), posix.O_CREAT | posix.O_TRUNC)
    rename(tmp, path)


def remove_dir(path: str) -> None:
    """A container's state directory holds only files pyoci made: its state and, until start, the start
    socket; they go by name, and the directory is listed only if more is left (a save that a killed create
    did not finish), which a listing first would cost every delete."""
    try:
        for name in (STATE_FILE, START_SOCKET):
            try:
                posix.unlink(f"{path}/{name}")
            except FileNotFoundError:
                pass
        try:
            posix.rmdir(path)
        except OSError as exc:
            if exc.errno not in (EEXIST, ENOTEMPTY):  # POSIX allows either for a directory not empty
                raise
            for name in posix.listdir(path):
                posix.unlink(f"{path}/{name}")
            posix.rmdir(path)
    except FileNotFoundError:
        pass


def proc_start_time(pid: int) -> int | None:
    """Start time of pid, or None if it is gone or a zombie (a zombie container has stopped)."""
    try:
        data = read_bytes(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def exit_status(wait_status: int) -> int:
    """A waitpid status as a shell reports it: the exit code, or 128 + the signal that killed it."""
    return 128 + posix.WTERMSIG(wait_status) if posix.WIFSIGNALED(wait_status) else posix.WEXITSTATUS(wait_status)


def reap(pid: int) -> int | None:
    """Waits for our child pid to end: its exit status, or None where it is not our child."""
    while True:
        try:
            _, status = posix.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return None
        return exit_status(status)


def alive(st: State) -> bool:
    return st.pid > 0 and proc_start_time(st.pid) == st.start_time


def frozen(paths: dict[str, str]) -> bool:
    """Whether the cgroup (hierarchy name → directory, as Cgroup.paths) is frozen or freezing: by pause, or
    with a parent the kernel froze."""
    try:
        if "freezer" in paths:
            return read_text(f"{paths['freezer']}/freezer.state").strip() != "THAWED"
        if "" in paths:
            if read_text(f"{paths['']}/cgroup.freeze").strip() == "1":
                return True
            return "frozen 1" in read_text(f"{paths['']}/cgroup.events").splitlines()
    except OSError:
        pass
    return False


def status(store: Store, st: State) -> str:
    if not st.ready:
        # a create still at work, or one that died before its container was ready (delete --force cleans up)
        return CREATING if st.creator and proc_start_time(st.creator) == st.creator_start else STOPPED
    if not alive(st):
        return STOPPED
    if exists(f"{store.dir(st.id)}/{START_SOCKET}"):
        return CREATED
    if frozen(st.cgroup.get("paths", {})):
        return PAUSED
    return RUNNING


def oci_state(st: State, current: str) -> dict[str, object]:
    """The runtime-spec State (with current, the status derived now), plus runc's created and owner, which
    runc's `state` leaves empty (its `list` fills it in: Container.owner)."""
    return {
        "ociVersion": OCI_VERSION,
        "id": st.id,
        "status": current,
        "pid": st.pid if current != STOPPED else 0,
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": "",
        "annotations": st.annotations,
    }


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
