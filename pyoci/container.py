"""The lifecycle in one place: create, start, kill, delete, and the guards on each status."""
from __future__ import annotations

import _signal  # signal.py's C core, int constants: signal.py itself imports enum
import gc
import os
import time

from . import OCI_VERSION, hooks, jsonio, state
from .errors import ConfigError, PyociError
from .log import Logger
from .state import FIFO, State, Store
from .store import ROOTFS_ANNOTATION

TYPE_CHECKING = False  # annotations are strings; start, kill and delete must not pay for cgroups' import here
if TYPE_CHECKING:
    from .cgroups import Cgroup


class CreateOptions:
    """What the command line adds to a create (a plain class: start, kill and delete import this module)."""

    def __init__(self, bundle: str, pid_file: str | None = None, console_socket: str | None = None,
                 no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0,
                 rootless_cgroups: bool = False) -> None:
        self.bundle, self.pid_file, self.console_socket = bundle, pid_file, console_socket
        self.no_pivot, self.no_new_keyring, self.preserve_fds = no_pivot, no_new_keyring, preserve_fds
        self.rootless_cgroups = rootless_cgroups  # runc's --rootless: cgroups we may not make are skipped
        self.console_fd = -1  # `run` in the foreground receives the pty itself on this fd


class Undo:
    """What a failing create must take back."""

    def __init__(self, state_dir: str) -> None:
        self.pids: list[int] = []
        self.fds: list[int] = []
        self.cgroup = None
        self.state_dir = state_dir
        self.host_mounts: dict[str, int] = {}

    def close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()

    def run(self) -> None:
        self.close_fds()
        for pid in self.pids:
            try:
                os.kill(pid, _signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        try:
            _unmount_host(self.host_mounts)
        except PyociError:
            pass  # the rest of the undo still runs; nothing better to do with a mount that will not go
        if self.cgroup is not None:
            self.cgroup.destroy()
        if self.state_dir:
            _remove_dir(self.state_dir)


def _mounts_at(path: str) -> int:
    from .linux.mountinfo import mount_points

    return mount_points().count(path)


def _unmount_host(host_mounts: dict[str, int]) -> None:
    """A container without a mount namespace of its own made its mounts on the host: take them down (the
    rootfs bind, detached lazily with everything mounted under it), leaving mounts that were there before."""
    if not host_mounts:
        return
    from .linux.shim import umount_lazy

    for path, before in host_mounts.items():
        while _mounts_at(path) > before:
            umount_lazy(path)


def _remove_dir(path: str) -> None:
    """A container's state directory holds only files pyoci wrote (state, fifo)."""
    try:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _hook_state(st: State, status: str) -> dict[str, object]:
    return {"ociVersion": OCI_VERSION, "id": st.id, "status": status, "pid": st.pid, "bundle": st.bundle,
            "annotations": st.annotations}


def open_namespaces(namespaces, undo: Undo) -> dict[str, int]:
    fds = {}
    for i, ns in enumerate(namespaces):
        if ns.path:
            try:
                fds[ns.type] = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise ConfigError(f"cannot open {ns.path}: {os.strerror(exc.errno)}",
                                  path=f"linux.namespaces[{i}].path") from None
            undo.fds.append(fds[ns.type])
    return fds


# sockaddr_un's sun_path holds 108 bytes with the NUL; a longer path is reached through its directory's fd.
SUN_PATH_MAX = 107


def connect_console(path: str) -> int:
    """Connects to the caller's --console-socket (a unix stream socket); the executor sends the pty master
    over it."""
    import stat

    from .linux import unixsock

    what = f"--console-socket {path}"
    target, parent = os.path.abspath(path), -1
    try:
        if not stat.S_ISSOCK(os.stat(target).st_mode):
            raise PyociError(f"{what}: not a unix socket")
        if len(os.fsencode(target)) > SUN_PATH_MAX:
            parent = os.open(os.path.dirname(target), os.O_PATH | os.O_CLOEXEC)
            target = f"/proc/self/fd/{parent}/{os.path.basename(target)}"
            if len(os.fsencode(target)) > SUN_PATH_MAX:
                raise PyociError(f"{what}: the socket's name is too long")
        return unixsock.connect(target).detach()
    except OSError as exc:
        raise PyociError(f"{what}: connect", exc.errno) from None
    finally:
        if parent >= 0:
            os.close(parent)


def _idmapped_trees(cfg, bundle: str, undo: Undo, rootless: bool) -> dict[int, int]:
    """Detached idmapped copies of the idmapped binds' sources, made here in the host's namespaces (where
    mount_setattr may idmap the filesystem) and moved into place by the executor, as runc does."""
    from .linux import mountopts, shim
    from .plan import bind_source

    trees = {}
    for i, m in enumerate(cfg.mounts):
        o = mountopts.parse(m.options)
        if not (m.uid_mappings or o.idmap):
            continue
        from .linux.idmap import userns_fd  # only idmapped mounts need it

        maps = (m.uid_mappings, m.gid_mappings) if m.uid_mappings else (cfg.uid_mappings, cfg.gid_mappings)
        ns = userns_fd(*maps, rootless, f"mounts[{i}]")
        try:
            trees[i] = shim.idmapped_tree(bind_source(m, bundle), ns, bool(o.flags & mountopts.MS_REC),
                                          o.idmap == "ridmap", f"mounts[{i}] ({m.destination})")
        finally:
            os.close(ns)
        undo.fds.append(trees[i])
    return trees


def _listen_fds() -> int:
    """systemd socket activation: fds 3.. handed to us are handed on, as runc does."""
    try:
        return int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return 0


def create(store: Store, container_id: str, opts: CreateOptions, log: Logger) -> State:
    from . import cgroups, plan, spec

    state.validate_id(container_id)
    bundle = os.path.abspath(opts.bundle)
    cfg = spec.load(bundle)
    unprivileged = os.geteuid() != 0
    if unprivileged and cfg.namespace("user") is None:
        raise ConfigError("without root a container needs a user namespace (see pyoci spec --rootless)",
                          path="linux.namespaces")
    rootfs = os.path.realpath(os.path.join(bundle, cfg.root_path))
    if not os.path.isdir(rootfs):
        raise ConfigError(f"not a directory: {rootfs}", path="root.path")
    terminal = cfg.process is not None and cfg.process.terminal
    if terminal and not opts.console_socket and opts.console_fd < 0:
        raise PyociError("process.terminal is true: --console-socket is required")
    if opts.console_socket and not terminal:
        raise PyociError("--console-socket needs process.terminal to be true")

    undo = Undo(state_dir=store.claim(container_id))
    try:
        st = State(id=container_id, bundle=bundle, rootfs=rootfs, created=state.now_rfc3339(),
                   owner=_owner(), annotations=cfg.annotations, has_process=cfg.process is not None,
                   hooks={k: hooks.to_json(cfg.hooks.get(k, [])) for k in ("poststart", "poststop")})
        fifo = os.path.join(undo.state_dir, FIFO)
        os.mkfifo(fifo, 0o600)
        fifo_fd = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
        undo.fds.append(fifo_fd)
        console_fd = opts.console_fd if terminal else -1
        if opts.console_socket:
            console_fd = connect_console(opts.console_socket)
            undo.fds.append(console_fd)
        listen = _listen_fds()
        options = plan.Options(rootfs=rootfs, bundle=bundle, fifo_fd=fifo_fd, console_fd=console_fd,
                               keep_fds=opts.preserve_fds + listen, no_pivot=opts.no_pivot,
                               keyring=None if opts.no_new_keyring else f"_ses.{container_id}",
                               ns_fds=open_namespaces(cfg.namespaces, undo),
                               extra_env=[f"LISTEN_FDS={listen}"] if listen else [], rootless=unprivileged)
        if cfg.seccomp and cfg.process:
            from .linux.seccomp import compile_filter

            options.seccomp = compile_filter(cfg.seccomp)
        layer = cfg.annotations.get(ROOTFS_ANNOTATION)
        if layer or cfg.namespace("mount") is None:
            st.host_mounts = undo.host_mounts = {rootfs: _mounts_at(rootfs)}
        store.save(st)  # from here on, a create killed midway leaves what `delete --force` needs to clean up
        if layer:
            _mount_layer(layer, rootfs, st.host_mounts[rootfs])
        options.idmap_trees = _idmapped_trees(cfg, bundle, undo, unprivileged)
        cg = cgroups.create(cfg.cgroups_path, container_id, cfg.resources, opts.rootless_cgroups)
        undo.cgroup = cg
        st.cgroup = cg.to_json()
        store.save(st)
        steps = plan.build(cfg, options, cg)

        def mounted(pid: int) -> bytes:
            """Before pivot_root: record the init, run prestart and createRuntime hooks."""
            st.pid, st.start_time = pid, state.proc_start_time(pid) or 0
            st.namespaces = _namespace_paths(cfg, pid)
            store.save(st)
            created = _hook_state(st, "created")
            for kind in ("prestart", "createRuntime"):
                hooks.run(kind, cfg.hooks.get(kind, []), created)
            return jsonio.dumps(created).encode() + b"\0" + jsonio.dumps(_hook_state(st, "running")).encode()

        def userns(pid: int) -> None:
            from .linux.idmap import write_maps

            write_maps(pid, cfg.uid_mappings, cfg.gid_mappings, unprivileged)

        def notify(pid: int, fd: int) -> None:
            from .linux.seccomp import send_to_listener

            send_to_listener(cfg.seccomp, fd, pid, {**_hook_state(st, "creating"), "pid": pid})

        run_plan(steps, cg, undo, userns, mounted, notify)
        if opts.pid_file:
            write_pid_file(opts.pid_file, st.pid)
    except BaseException:
        undo.run()
        raise
    return st


def _mount_layer(layer: str, rootfs: str, mounted: int) -> None:
    """A bundle made from a stored image: its overlay goes on at create (delete takes it down)."""
    from .store.bundles import mount

    where = f"annotations[{ROOTFS_ANNOTATION}]"
    if os.path.realpath(os.path.join(layer, "merged")) != rootfs:
        raise ConfigError(f"root.path must be the layer's merged directory {os.path.join(layer, 'merged')}",
                          path=where)
    if mounted:
        raise PyociError(f"{rootfs} is mounted already: a container of this bundle exists")
    mount(layer)


def run_plan(steps, cgroup: Cgroup, undo: Undo, on_userns=None, on_mounted=None, on_seccomp=None) -> int:
    """Starts the executor on the plan and drives it until READY; returns the pid that will execve."""
    from .linux import shim, unixsock

    parent, child = unixsock.socketpair(unixsock.SOCK_SEQPACKET)
    try:
        try:
            first = shim.spawn(steps, child.fileno())
        finally:
            child.close()
        undo.pids.append(first)
        undo.close_fds()  # the child holds its own copies of the fifo, console and namespace fds
        pid = _drive(parent, first, steps, cgroup, undo, on_userns, on_mounted, on_seccomp)
    finally:
        parent.close()
    os.waitpid(first, 0)
    undo.pids.remove(first)
    return pid


def _drive(sync, first: int, steps, cgroup: Cgroup, undo: Undo, on_userns, on_mounted, on_seccomp=None) -> int:
    """The parent's side of the sync protocol: writes id maps, runs the runtime's hooks and passes a seccomp
    notify fd on when asked (the child joins its cgroups itself)."""
    from .cgroups import is_v2_host
    from .linux import shim, unixsock

    # The init's pid comes from the forking process, the init's own messages from the init: the two race, so
    # MOUNTED and a notify fd wait for the pid and READY counts only once the pid is known.
    pid, mounted, ready, notify_fd = 0, False, False, -1
    try:
        while not (ready and pid):
            data, fds = unixsock.recv_fds(sync, 4096, 1)
            if not data:
                from .cgroups.stats import oom_kills

                if oom_kills(cgroup, is_v2_host()):
                    raise PyociError("the OOM killer took the container process before it was ready: "
                                     "linux.resources.memory.limit is too small")
                raise PyociError("the container process exited before it was ready")
            msg = shim.decode(data)
            if msg.type == shim.MSG_USERNS:
                on_userns(first)
                sync.send(b"\0")
            elif msg.type == shim.MSG_PID:
                pid = msg.pid
                undo.pids.append(pid)
            elif msg.type == shim.MSG_MOUNTED:
                mounted = True
            elif msg.type == shim.MSG_READY:
                ready = True
            elif msg.type == shim.MSG_SECCOMP_FD and fds:
                notify_fd = fds[0]
            elif msg.type == shim.MSG_ERROR:
                step = steps[msg.step] if 0 <= msg.step < len(steps) else None
                what = step.what if step else "container init"
                raise PyociError(f"{what}: {msg.detail}" if msg.detail else what, msg.err)
            if mounted and pid:
                sync.send(b"\0" + on_mounted(pid))
                mounted = False
            if notify_fd >= 0 and pid:
                on_seccomp(pid, notify_fd)
                os.close(notify_fd)
                notify_fd = -1
                sync.send(b"\0")
    finally:
        if notify_fd >= 0:
            os.close(notify_fd)
    return pid


def _namespace_paths(cfg, pid: int) -> dict[str, str]:
    names = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
             "cgroup": "cgroup", "time": "time"}
    return {ns.type: ns.path or f"/proc/{pid}/ns/{names[ns.type]}" for ns in cfg.namespaces}


def _owner() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def start(store: Store, container_id: str, log: Logger) -> State:
    lock = store.lock(container_id)
    try:
        st = store.load(container_id)
        status = state.status(store, st)
        if status != "created":
            raise PyociError(f"cannot start a container in the {status} state")
        if not st.has_process:
            raise ConfigError("required to start the container", path="process")
        fifo = os.path.join(store.dir(container_id), FIFO)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise PyociError("container init is not waiting", exc.errno) from None
        import select

        try:
            os.write(fd, b"0")
            os.unlink(fifo)
            # The init's end of the fifo closes on execve: then there is no reader and poll says POLLERR.
            poller = select.poll()
            poller.register(fd, 0)
            poller.poll()
        finally:
            os.close(fd)
        post = hooks.from_json(st.hooks.get("poststart", []))
        if post:
            try:
                hooks.run("poststart", post, _hook_state(st, "running"))
            except PyociError:
                _kill_and_wait(st)
                raise
        return st
    finally:
        os.close(lock)


# runc's words: containerd's shim takes a kill error as "already gone" only when it says this.
NOT_RUNNING = "container not running"
SIGNALS = {name: getattr(_signal, name) for name in dir(_signal) if name.startswith("SIG") and not name.startswith("SIG_")}


def parse_signal(text: str) -> int:
    if text.isdigit():
        num = int(text)
        if 0 < num < _signal.NSIG:
            return num
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in SIGNALS:
            return SIGNALS[name]
    raise PyociError(f"invalid signal {jsonio.dumps(text)}")


def kill(store: Store, container_id: str, sig: int, all_processes: bool = False) -> None:
    """Signals the init, or with --all every process in the container's cgroup. --all also reaches what a
    stopped container left behind (children of an init that shared its pid namespace) and then succeeds, as
    runc's does: containerd's shim sends `kill --all ID 9` after the init exits and on delete."""
    from .cgroups import Cgroup

    st = store.load(container_id)
    status = state.status(store, st)
    cg = Cgroup.from_json(st.cgroup)
    if all_processes and cg.paths:
        cg.signal_all(sig)
        if status == "paused" and sig == _signal.SIGKILL:
            cg.freeze(False)  # a frozen process dies only once thawed
        return
    if status == "stopped":
        if all_processes:
            return
        raise PyociError(NOT_RUNNING)
    # Without a cgroup (rootless) --all reaches the init only; with its own pid namespace the kernel takes
    # the rest when it dies.
    try:
        os.kill(st.pid, sig)
    except ProcessLookupError:
        raise PyociError(NOT_RUNNING) from None
    if status == "paused" and sig == _signal.SIGKILL:
        cg.freeze(False)


def _kill_and_wait(st: State, timeout: float = 10.0) -> None:
    from .cgroups import Cgroup

    Cgroup.from_json(st.cgroup).freeze(False)  # a frozen process cannot die
    if state.alive(st):
        try:
            os.kill(st.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while state.alive(st) and time.monotonic() < deadline:
        time.sleep(0.005)
    if state.alive(st):
        raise PyociError(f"container init {st.pid} did not die")


def pause(store: Store, container_id: str, frozen: bool) -> None:
    """pause (frozen=True) or resume; the freezer is v1's freezer.state or v2's cgroup.freeze."""
    from .cgroups import Cgroup

    st = store.load(container_id)
    status = state.status(store, st)
    if status != ("running" if frozen else "paused"):
        raise PyociError(f"cannot {'pause' if frozen else 'resume'} a container in the {status} state")
    Cgroup.from_json(st.cgroup).freeze(frozen)


def update(store: Store, container_id: str, resources: dict) -> None:
    """Applies new linux.resources to a live container (device rules stay as create set them)."""
    from .cgroups import Cgroup, is_v2_host, limits

    st = store.load(container_id)
    status = state.status(store, st)
    if status == "stopped":
        raise PyociError("cannot update a stopped container")
    limits.apply(Cgroup.from_json(st.cgroup), resources, v2_only=is_v2_host(), devices=False)


def events(store: Store, container_id: str, once: bool, interval: float) -> None:
    """runc's events: a stats object (once, with --stats), or stats every interval and an "oom" event
    whenever the OOM killer strikes, until the container stops."""
    from .cgroups import Cgroup, is_v2_host
    from .cgroups.stats import oom_kills, stats

    st = store.load(container_id)
    if state.status(store, st) == "stopped":
        raise PyociError("container is not running")
    cg, v2 = Cgroup.from_json(st.cgroup), is_v2_host()

    def emit(kind: str, data: dict | None = None) -> None:
        event = {"type": kind, "id": container_id, **({"data": data} if data is not None else {})}
        print(jsonio.dumps(event), flush=True)

    if once:
        emit("stats", stats(cg, v2))
        return
    gc.enable()  # the pyoci command starts without it (csrc/launcher.c); this loop lasts as long as the container
    seen, due = oom_kills(cg, v2), 0.0
    while True:
        running = state.alive(st)
        if running and time.monotonic() >= due:
            emit("stats", stats(cg, v2))
            due = time.monotonic() + interval
        kills = oom_kills(cg, v2)
        if kills > seen:
            emit("oom")  # also when it was the init that the OOM killer took
            seen = kills
        if not running:
            return
        time.sleep(min(0.1, interval))


def processes(store: Store, container_id: str) -> list[int]:
    from .cgroups import Cgroup

    return Cgroup.from_json(store.load(container_id).cgroup).pids()


def delete(store: Store, container_id: str, force: bool, log: Logger) -> None:
    from .cgroups import Cgroup

    state.validate_id(container_id)
    try:
        lock = store.lock(container_id)
    except PyociError:
        if force:
            return
        raise
    try:
        try:
            st = store.load(container_id)
        except PyociError:
            if not force:
                raise
            # a create that died before it wrote its state, or a damaged state: what can be found goes
            Cgroup.default(container_id).destroy()
            _remove_dir(store.dir(container_id))
            return
        status = state.status(store, st)
        if status != "stopped":
            if not force:
                raise PyociError(f"cannot delete a container that is not stopped: {status}")
            _kill_and_wait(st)
        (Cgroup.from_json(st.cgroup) if st.cgroup else Cgroup.default(container_id)).destroy()
        _unmount_host(st.host_mounts)
        for i, h in enumerate(hooks.from_json(st.hooks.get("poststop", []))):
            try:
                hooks.run("poststop", [h], _hook_state(st, "stopped"))
            except PyociError as exc:
                log.warning(f"delete {container_id}: {exc}".replace("hooks.poststop[0]", f"hooks.poststop[{i}]"))
        _remove_dir(store.dir(container_id))
    finally:
        os.close(lock)
