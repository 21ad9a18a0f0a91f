"""The container lifecycle, in one place, and pyoci's Python API.

    import pyoci
    rt = pyoci.Runtime(root="/run/pyoci")
    c = rt.create("c1", "/path/to/bundle")   # parked: status "created"
    c.start()
    c.kill(signal.SIGTERM)
    c.wait()
    c.delete()

Statuses are derived when asked (pyoci/state.py): creating, created, running, paused, stopped. Whether an
operation may run in a status is one table, TRANSITIONS, with runc's words for each refusal (engines match
some of them: containerd takes `container not running` from kill as "already gone"). Every operation that
changes a container holds its lock: create from the claim of the id until the init is ready, the others
while they act; an operation that finds a create still at work fails at once instead of waiting.

A Runtime keeps no global state, changes no cwd, installs no signal handlers and leaves no fd open, so a
long-lived program can drive any number of containers. (The pyoci command adds what a terminal user
expects: signal forwarding and the pty relay of `run`, in pyoci/foreground.py.)
"""
from __future__ import annotations

import _signal  # signal.py's C core, int constants: signal.py itself imports enum
import posix
import time

from . import jsonio, state
from .errors import ConfigError, NotFoundError, PyociError, WrongStateError
from .log import Logger
from .state import CREATED, CREATING, PAUSED, RUNNING, STOPPED, START_SOCKET, State, Store

TYPE_CHECKING = False  # annotations are strings; start, kill and delete must not pay for these imports
if TYPE_CHECKING:
    from typing import Iterator

    from .execute import ExecOptions, ExecProcess
    from .state import Lock

NOT_RUNNING = "container not running"
BEING_CREATED = "container {id} is being created"
# operation → status → None (allowed) or the refusal; a status not listed is refused with GENERIC.
TRANSITIONS: dict[str, dict[str, str | None]] = {
    "start": {CREATED: None, CREATING: BEING_CREATED, RUNNING: "cannot start an already running container",
              PAUSED: "cannot start a container in the paused state",
              STOPPED: "cannot start a container that has stopped"},
    "kill": {CREATED: None, RUNNING: None, PAUSED: None, STOPPED: NOT_RUNNING, CREATING: BEING_CREATED},
    # --all: what a stopped container left in its cgroup too (containerd's shim asks after the init exits)
    "kill --all": {CREATED: None, RUNNING: None, PAUSED: None, STOPPED: None, CREATING: BEING_CREATED},
    "delete": {STOPPED: None, CREATING: BEING_CREATED},
    "delete --force": {CREATED: None, RUNNING: None, PAUSED: None, STOPPED: None, CREATING: BEING_CREATED},
    "pause": {RUNNING: None, CREATING: BEING_CREATED},
    "resume": {PAUSED: None, CREATING: BEING_CREATED},
    "update": {CREATED: None, RUNNING: None, PAUSED: None, STOPPED: NOT_RUNNING, CREATING: BEING_CREATED},
    "exec": {CREATED: None, RUNNING: None, CREATING: BEING_CREATED,
             PAUSED: "cannot exec in a paused container (use --ignore-paused to override)",
             STOPPED: "cannot exec in a stopped container"},
    # the process freezes as it joins the cgroup and runs once the container is resumed
    "exec --ignore-paused": {CREATED: None, RUNNING: None, PAUSED: None, CREATING: BEING_CREATED,
                             STOPPED: "cannot exec in a stopped container"},
    "events": {CREATED: None, RUNNING: None, PAUSED: None, STOPPED: "container with id {id} is not running",
               CREATING: BEING_CREATED},
}
GENERIC = "cannot {op} a container in the {status} state"
# delete's refusal of a live container, in runc's words
NOT_STOPPED = "cannot delete container {id} that is not stopped: {status}"


def guard(op: str, status: str, container_id: str) -> None:
    """Refuses op in status, with the table's words."""
    rules = TRANSITIONS[op]
    if status in rules and rules[status] is None:
        return
    text = rules.get(status) or (NOT_STOPPED if op == "delete" else GENERIC)
    raise WrongStateError(text.format(id=container_id, op=op.split()[0], status=status), status, op)


class Runtime:
    """The containers under one root directory (runc's --root)."""

    def __init__(self, root: str | None = None, log: Logger | None = None,
                 rootless_cgroups: bool | None = None) -> None:
        self.store = Store(root or state.default_root())
        self.log = log or Logger()
        # runc's --rootless: skip the cgroups this user may not make (None: when not root)
        self.rootless_cgroups = posix.geteuid() != 0 if rootless_cgroups is None else rootless_cgroups

    @property
    def root(self) -> str:
        return self.store.root

    def create(self, container_id: str, bundle: str = ".", **options: object) -> Container:
        """Builds the container from the bundle and parks its init, waiting for start(). options are
        CreateOptions' fields: pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds, console_fd."""
        from . import spec
        from .create import CreateOptions, create
        from .linux import fs

        state.validate_id(container_id)
        opts = CreateOptions(bundle=bundle, rootless_cgroups=self.rootless_cgroups, **options)
        cfg = spec.load(fs.abspath(bundle))
        return Container(self, container_id, create(self.store, container_id, cfg, opts, self.log))

    def get(self, container_id: str) -> Container:
        return Container(self, container_id, self.store.load(container_id))

    def container(self, container_id: str) -> Container:
        """A handle on the container whose state is not read yet: its first call reads it, and fails as get
        would for an id with no container. Each operation reads the state again under the container's lock,
        so a handle saves the short commands of the pyoci command a read of state.json (~0.1 M instructions)."""
        return Container(self, container_id, None)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Container.delete (with force: also of an unknown id, which succeeds as runc's does, and of a
        damaged state)."""
        self.container(container_id).delete(force)

    def list(self) -> list[Container]:
        """Every container whose state is readable; the others are named in a warning."""
        found = []
        for cid in self.store.ids():
            try:
                found.append(self.get(cid))
            except NotFoundError:
                continue  # deleted while we looked
            except PyociError as exc:
                self.log.warning(str(exc))
        return found


class Container:
    """One container; every call reads its state anew (another process may change it)."""

    def __init__(self, runtime: Runtime, container_id: str, st: State | None) -> None:
        self.runtime, self.id, self._st = runtime, container_id, st  # None: not read yet (Runtime.container)

    def __repr__(self) -> str:
        return f"Container({self.id!r}, root={self.runtime.root!r})"

    @property
    def pid(self) -> int:
        """The init's pid (0 before it exists)."""
        return (self._st or self._load()).pid

    @property
    def bundle(self) -> str:
        return (self._st or self._load()).bundle

    @property
    def owner(self) -> str:
        """Who made the container, by name, as runc's `list` shows it."""
        return self.runtime.store.owner(self.id)

    def _load(self) -> State:
        self._st = self.runtime.store.load(self.id)
        return self._st

    def status(self) -> str:
        return state.status(self.runtime.store, self._load())

    def state(self) -> dict[str, object]:
        """The runtime-spec state (with runc's created and owner)."""
        st = self._load()
        return state.oci_state(st, state.status(self.runtime.store, st))

    def _lock(self, op: str) -> tuple[Lock, str]:
        """The container's lock and its status, checked against op. A create still at work holds the lock:
        refused at once rather than waited for."""
        store = self.runtime.store
        lock = store.lock(self.id, wait=False)
        if lock is None:
            current = state.status(store, self._load())
            if current == CREATING:
                guard(op, current, self.id)
            lock = store.lock(self.id)
        try:
            current = state.status(store, self._load())
            guard(op, current, self.id)
        except BaseException:
            lock.release()
            raise
        return lock, current

    def start(self) -> None:
        """Runs the process of a created container; returns once it runs (its execve), after the poststart
        hooks. A failing startContainer or poststart hook fails start and stops the container."""
        from .linux import unixsock
        from .messages import until_exec

        lock, _ = self._lock("start")
        st = self._st
        fd = -1
        try:
            try:
                if not st.has_process:
                    raise ConfigError("required to start the container", path="process")
                path = f"{self.runtime.store.dir(self.id)}/{START_SOCKET}"
                try:
                    fd = unixsock.connect_fd(path, unixsock.SOCK_SEQPACKET)
                    posix.write(fd, b"\0")
                except OSError as exc:
                    raise PyociError("container init is not waiting", exc.errno) from None
                posix.unlink(path)  # the status is "running" from here on
                self.runtime.log.debug(f"init {st.pid} told to start")
            finally:
                lock.release()
            try:
                until_exec(fd, self.runtime.log)
                _run_hooks(st, "poststart", RUNNING)
            except PyociError:
                _stop(st)
                raise
        finally:
            if fd >= 0:
                posix.close(fd)

    def kill(self, signal: int = _signal.SIGTERM, all: bool = False) -> None:
        """Signals the init, or with all every process in the container's cgroup (sub-cgroups too). all also
        reaches what a stopped container left behind (children of an init that shared its pid namespace),
        as runc's does."""
        from .cgroups import Cgroup

        lock, current = self._lock("kill --all" if all else "kill")
        try:
            st = self._st
            cg = Cgroup.from_json(st.cgroup)
            self.runtime.log.debug(f"signal {signal} to {'every process of' if all else 'the init of'} the "
                                   f"{current} container (init {st.pid})")
            if all and cg.paths:
                cg.signal_all(signal)
            elif current != STOPPED:
                # Without a cgroup (rootless) all reaches the init only; with its own pid namespace the kernel
                # takes the rest when it dies.
                try:
                    posix.kill(st.pid, signal)
                except ProcessLookupError:
                    if not all:
                        raise PyociError(NOT_RUNNING) from None
            if current == PAUSED and signal == _signal.SIGKILL:
                cg.freeze(False)  # a frozen process dies only once thawed
        finally:
            lock.release()

    def delete(self, force: bool = False) -> None:
        """Removes a stopped container (force: any, killing it first): its cgroup, host mounts and state,
        then its poststop hooks (a failing one is a warning; the others still run). With force, a container
        that is gone already is no error (runc's delete --force), and one whose state cannot be read has what
        it can have left removed: the cgroups a config without cgroupsPath gets, and its state directory."""
        from .cgroups import Cgroup

        store = self.runtime.store
        try:
            lock, current = self._lock("delete --force" if force else "delete")
        except NotFoundError:
            if force:
                return
            raise
        except WrongStateError:
            raise
        except PyociError:  # the state is damaged (or the id invalid, which _remove_damaged says again)
            if not force:
                raise
            self._remove_damaged()
            return
        try:
            st = self._st
            self.runtime.log.debug(f"deleting the {current} container: its init {st.pid}, cgroup, host mounts, "
                                   f"state and {len(st.hooks.get('poststop', []))} poststop hook(s)")
            if current != STOPPED or not st.ready:  # stopped before it was ready: a create that died may
                _kill_and_wait(st)  # have left its init parked (a ready one is stopped when its init is gone)
            (Cgroup.from_json(st.cgroup) if st.cgroup else Cgroup.default(self.id)).destroy()
            if st.host_mounts:
                from .linux.mountinfo import unmount_above

                unmount_above(st.host_mounts)
            if st.resctrl:
                from .linux.resctrl import Group, remove

                remove(Group.from_json(st.resctrl))
            for i, h in enumerate(_hooks(st, "poststop")):
                try:
                    _run_hooks(st, "poststop", STOPPED, [h])
                except PyociError as exc:
                    self.runtime.log.warning(str(exc).replace("poststop[0]", f"poststop[{i}]"))
            state.remove_dir(store.dir(self.id))
        finally:
            lock.release()

    def _remove_damaged(self) -> None:
        from .cgroups import Cgroup

        store = self.runtime.store
        lock = store.lock(self.id)
        try:
            Cgroup.default(self.id).destroy()
            state.remove_dir(store.dir(self.id))
        finally:
            lock.release()

    def pause(self) -> None:
        """Freezes every process (v1 freezer or v2 cgroup.freeze)."""
        self._freeze("pause", True)

    def resume(self) -> None:
        self._freeze("resume", False)

    def _freeze(self, op: str, frozen: bool) -> None:
        from .cgroups import Cgroup

        lock, _ = self._lock(op)
        try:
            self.runtime.log.debug(f"{'freezing' if frozen else 'thawing'} the cgroup of init {self._st.pid}")
            Cgroup.from_json(self._st.cgroup).freeze(frozen)
        finally:
            lock.release()

    def update(self, resources: dict[str, object], schemata: list[str] | None = None) -> None:
        """Applies new linux.resources (device rules stay as create set them), and new schemata lines to the
        container's resctrl group (runc's --l3-cache-schema and --mem-bw-schema)."""
        from . import spec
        from .cgroups import Cgroup, is_v2_host, limits

        try:
            spec.check_resources(resources, "resources")
        except ConfigError as exc:  # not config.json's: the caller's --resources
            raise PyociError(f"{exc.path}: {exc.msg}") from None
        lock, _ = self._lock("update")
        try:
            self.runtime.log.debug(f"new limits {jsonio.dumps(resources)}")
            limits.apply(Cgroup.from_json(self._st.cgroup), resources, v2_only=is_v2_host(), devices=False,
                         warn=self.runtime.log.warning)
            if schemata:
                from .linux import resctrl

                resctrl.update(resctrl.Group.from_json(self._st.resctrl), schemata, resctrl.mountpoint())
        finally:
            lock.release()

    def exec(self, opts: ExecOptions) -> ExecProcess:
        """A new process in the container, every namespace of it joined (the user namespace first) and its
        cgroup; returns once it has execve'd (in a paused container, with opts.ignore_paused: once resumed). It
        is this process's child: ExecProcess.wait() gives its exit status."""
        from .create import check_preserved
        from .execute import exec_process

        check_preserved(opts.preserve_fds)
        lock, current = self._lock("exec --ignore-paused" if opts.ignore_paused else "exec")
        if current == PAUSED:
            lock.release()  # resume needs it, and the new process waits for resume
        return exec_process(self.runtime, self._st, opts, lock)

    def processes(self) -> list[int]:
        """The pids in the container's cgroup and its sub-cgroups."""
        from .cgroups import Cgroup

        return Cgroup.from_json(self._load().cgroup).pids()

    def stats(self) -> dict[str, object]:
        """runc's stats object (cpu, memory, pids, blkio, hugetlb...)."""
        from .cgroups import Cgroup, is_v2_host
        from .cgroups.stats import stats

        st = self._load()
        guard("events", state.status(self.runtime.store, st), self.id)
        return stats(Cgroup.from_json(st.cgroup), is_v2_host())

    def events(self, interval: float = 5.0) -> Iterator[dict[str, object]]:
        """runc's events: stats every interval and an "oom" event whenever the OOM killer strikes, until the
        container stops."""
        from .events import follow

        st = self._load()
        guard("events", state.status(self.runtime.store, st), self.id)
        return follow(st, interval)

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits until the init has ended: its exit status where it is this process's child (a container made
        through this API), else None. None too when timeout (seconds) passes first."""
        pid = self._load().pid
        if pid <= 0 or not state.alive(self._st):
            return _reap(pid)
        import select

        try:
            fd = posix.pidfd_open(pid)
        except ProcessLookupError:
            return _reap(pid)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(None if timeout is None else int(timeout * 1000)):
                return None
        finally:
            posix.close(fd)
        return _reap(pid)


def _reap(pid: int) -> int | None:
    return state.reap(pid) if pid > 0 else None


def _hooks(st: State, kind: str) -> list:
    raw = st.hooks.get(kind)
    if not raw:
        return []  # the common case: start and delete import neither hooks nor spec
    from .hooks import from_json

    return from_json(raw)


def _run_hooks(st: State, kind: str, status: str, only: list | None = None) -> None:
    hooks = _hooks(st, kind) if only is None else only
    if hooks:
        from . import hooks as runner

        runner.run(kind, hooks, runner.hook_state(st, status))


def _stop(st: State) -> None:
    """After a failed start: the init and whatever it left in the cgroup go."""
    from .cgroups import Cgroup

    cg = Cgroup.from_json(st.cgroup)
    if cg.paths:
        cg.signal_all(_signal.SIGKILL)
    _kill_and_wait(st)


def _kill_and_wait(st: State, timeout: float = 10.0) -> None:
    from .cgroups import Cgroup

    if not state.alive(st):
        return
    Cgroup.from_json(st.cgroup).freeze(False)  # a frozen process cannot die
    try:
        posix.kill(st.pid, _signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while state.alive(st) and time.monotonic() < deadline:
        time.sleep(0.005)
    if state.alive(st):
        raise PyociError(f"container init {st.pid} did not die")


def parse_signal(text: str) -> int:
    """A signal by name (KILL, SIGKILL, kill) or number, as runc takes it; 0 asks only whether the container
    is alive (kill(2)'s signal 0: sent nowhere, refused with `container not running` once it has stopped).
    A name is looked up alone: a table of every signal costs each call that imports this module ~0.15 M
    instructions (dir(_signal)), more than the rest of the module's making."""
    if text.isdigit():
        num = int(text)
        if 0 <= num < _signal.NSIG:
            return num
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        num = None if name.startswith("SIG_") else getattr(_signal, name, None)
        if type(num) is int:
            return num
    raise PyociError(f"invalid signal {jsonio.dumps(text)}")
