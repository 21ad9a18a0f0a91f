"""Building a container, what `create` does between its guard and its return: the config read and checked,
the fds the executor gets (start socket, console, namespaces, idmapped trees), the image's overlay, the
cgroup, the plan, and the executor driven to READY. A failure undoes all of it.
"""
from __future__ import annotations

import _signal
import posix
from _stat import S_ISSOCK  # stat.py's C core (see plan.py)

from . import hooks, layer, state
from .errors import ConfigError, PyociError
from .linux import fs
from .linux.files import write
from .linux.mountinfo import mounts_at, unmount_above
from .record import Record
from .state import START_SOCKET, State, Store

TYPE_CHECKING = False  # annotations are strings; the lifecycle's short commands never import this module
if TYPE_CHECKING:
    from typing import Callable

    from .cgroups import Cgroup
    from .linux.netdev import Devices
    from .linux.resctrl import Group
    from .log import Logger
    from .spec import Config, Namespace


class CreateOptions(Record):
    """What the command line (or a program using pyoci) adds to a create."""
    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    rootless_cgroups: bool = False  # runc's --rootless: cgroups we may not make are skipped
    console_fd: int = -1  # `run` in the foreground receives the pty itself on this fd
    pidfd_socket: str | None = None


class Undo:
    """What a failing create (or exec) must take back."""

    def __init__(self, state_dir: str | None) -> None:
        self.pids: list[int] = []
        self.fds: list[int] = []
        self.cgroup: Cgroup | None = None
        self.state_dir = state_dir
        self.host_mounts: dict[str, int] = {}
        self.devices: Devices | None = None  # host interfaces moved into the container: given back
        self.resctrl: Group | None = None  # the resctrl groups create made

    def close_fds(self) -> None:
        for fd in self.fds:
            try:
                posix.close(fd)
            except OSError:
                pass
        self.fds.clear()

    def run(self) -> None:
        self.close_fds()
        if self.devices is not None:
            from .linux.netdev import give_back

            give_back(self.devices)
        for pid in self.pids:
            try:
                posix.kill(pid, _signal.SIGKILL)
                posix.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        try:
            unmount_above(self.host_mounts)
        except PyociError:
            pass  # the rest of the undo still runs; nothing better to do with a mount that will not go
        if self.cgroup is not None:
            self.cgroup.destroy()
        if self.resctrl is not None:
            from .linux.resctrl import remove

            try:
                remove(self.resctrl, undo=True)
            except PyociError:
                pass  # as with the mounts: the rest of the undo still runs
        if self.state_dir:
            state.remove_dir(self.state_dir)


def open_namespaces(namespaces: list[Namespace], undo: Undo) -> dict[str, int]:
    fds = {}
    for i, ns in enumerate(namespaces):
        if ns.path:
            try:
                fds[ns.type] = posix.open(ns.path, posix.O_RDONLY | posix.O_CLOEXEC)
            except OSError as exc:
                raise ConfigError(f"cannot open {ns.path}: {posix.strerror(exc.errno)}",
                                  path=f"linux.namespaces[{i}].path") from None
            undo.fds.append(fds[ns.type])
    return fds


def image_home(rootfs: str, uid: int) -> str:
    """HOME for uid from the image's /etc/passwd, read as the container sees it (nothing followed out of the
    rootfs, no FIFO, device or oversized file: those count as no passwd), never as the host would."""
    from . import plan
    from .defaults import IMAGE_FILE_LIMIT
    from .linux.shim import read_in_root

    return plan.home(read_in_root(rootfs, "/etc/passwd", IMAGE_FILE_LIMIT), uid)


def connect_socket(path: str, flag: str = "--console-socket") -> int:
    """Connects to the caller's --console-socket (the executor sends the pty master over it) or
    --pidfd-socket (a unix stream socket)."""
    from .linux import unixsock

    what = f"{flag} {path}"
    target = fs.abspath(path)
    try:
        if not S_ISSOCK(posix.stat(target).st_mode):
            raise PyociError(f"{what}: not a unix socket")
        return unixsock.connect(target).detach()
    except OSError as exc:
        raise PyociError(f"{what}: connect: {exc.strerror}", exc.errno) from None


def _source_trees(cfg: Config, bundle: str, undo: Undo, rootless: bool) -> dict[int, int]:
    """Detached copies of bind sources, made here in the host's namespaces and moved into place by the
    executor, as runc does: the idmapped binds' (mount_setattr may idmap the filesystem only here), and where
    the container has a user namespace every bind's, whose source its root may not reach (a host directory
    of mode 0700 on the way). A runtime without root opens nothing its container could not."""
    from .linux import mountopts, shim
    from .plan import bind_source

    userns = cfg.namespace("user") is not None and not rootless
    trees = {}
    for i, m in enumerate(cfg.mounts):
        o = mountopts.parse(m.options)
        what, rec = f"mounts[{i}] ({m.destination})", bool(o.flags & mountopts.MS_REC)
        if m.uid_mappings or o.idmap:
            from .linux.idmap import userns_fd  # only idmapped mounts need it

            maps = (m.uid_mappings, m.gid_mappings) if m.uid_mappings else (cfg.uid_mappings, cfg.gid_mappings)
            ns = userns_fd(*maps, rootless, f"mounts[{i}]")
            try:
                trees[i] = shim.mount_tree(bind_source(m, bundle), rec, what, ns, o.idmap == "ridmap")
            finally:
                posix.close(ns)
        elif userns and (o.bind or m.type == "bind"):
            trees[i] = shim.mount_tree(bind_source(m, bundle), rec, what)
        else:
            continue
        undo.fds.append(trees[i])
    return trees


def check_preserved(preserve: int, listen: int = 0) -> None:
    """The fds a container is to keep (3 on: LISTEN_FDS's, then --preserve-fds's) must all be open, and be
    checked before the runtime opens any of its own: one of ours in a gap would be handed on too (the
    container's lock, say, which would then block every later command). runc refuses them the same way."""
    for fd in range(3 + listen, 3 + listen + preserve):
        try:
            posix.fstat(fd)
        except OSError as exc:
            raise PyociError(f"--preserve-fds {preserve}: fd {fd} is not open", exc.errno) from None


def listen_fds() -> int:
    """systemd socket activation: fds 3.. handed to us are handed on, as runc does."""
    try:
        return int(fs.getenv("LISTEN_FDS") or "0")
    except ValueError:
        return 0


def send_pidfd(path: str, pid: int, name: str) -> None:
    """runc's --pidfd-socket: a pidfd of the container's process (our child, so its pid cannot be reused
    before we reap it), with runc's name for the kind of process ("standard" the init, "setns" an exec)."""
    from .linux import unixsock

    sock = unixsock.adopt(connect_socket(path, "--pidfd-socket"))
    try:
        pidfd = posix.pidfd_open(pid)
    except OSError as exc:
        sock.close()
        raise PyociError(f"--pidfd-socket {path}: pidfd_open (Linux 5.3 or later)", exc.errno) from None
    try:
        unixsock.send_fds(sock, [name.encode()], [pidfd])
    except OSError as exc:
        raise PyociError(f"--pidfd-socket {path}: send", exc.errno) from None
    finally:
        posix.close(pidfd)
        sock.close()


def write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.{posix.getpid()}.tmp"
    try:
        write(tmp, str(pid), posix.O_CREAT | posix.O_TRUNC)
        posix.rename(tmp, path)
    except OSError as exc:
        raise PyociError(f"--pid-file {path}: {exc.strerror}", exc.errno) from None


def namespace_paths(cfg: Config, pid: int) -> dict[str, str]:
    names = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
             "cgroup": "cgroup", "time": "time"}
    return {ns.type: ns.path or f"/proc/{pid}/ns/{names[ns.type]}" for ns in cfg.namespaces}


def check(cfg: Config, opts: CreateOptions, rootfs: str) -> None:
    """What the command line and the host decide beyond the config's own validation, before anything is
    made."""
    if posix.geteuid() != 0 and cfg.namespace("user") is None:
        raise ConfigError("without root a container needs a user namespace (see pyoci spec --rootless)",
                          path="linux.namespaces")
    if not fs.isdir(rootfs):
        raise ConfigError(f"not a directory: {rootfs}", path="root.path")
    if fs.samefile(rootfs, "/"):
        # Its proc, /dev and sysfs would go over the caller's own (with no mount namespace, on the host).
        raise ConfigError(f"resolves to the host's root directory: {cfg.root_path}", path="root.path")
    terminal = cfg.process is not None and cfg.process.terminal
    if terminal and not opts.console_socket and opts.console_fd < 0:
        raise PyociError("process.terminal is true: --console-socket is required")
    if opts.console_socket and not terminal:
        raise PyociError("--console-socket needs process.terminal to be true")
    if cfg.net_devices and posix.geteuid() != 0:
        raise ConfigError("moving host interfaces needs root", path="linux.netDevices")


def holder(store: Store, container_id: str) -> Callable[[str], str | None]:
    """Which other live container of this root has a host interface (linux.netDevices), for the error that
    says the interface is missing."""
    def find(name: str) -> str | None:
        for other in store.ids():
            if other == container_id:
                continue
            try:
                st = store.load(other)
            except PyociError:
                continue
            if name in st.net_devices and state.alive(st):
                return other
        return None
    return find


def _check_cgroup(cg: Cgroup, log: Logger) -> None:
    """A cgroupsPath may name a cgroup that exists: a frozen one would freeze the executor mid-way (create
    would wait for it forever), and one with processes in it is shared with them. runc's words and rules."""
    if state.frozen(cg.paths):
        raise PyociError("container's cgroup unexpectedly frozen: thaw it first (freezer.state THAWED, or "
                         "cgroup.freeze 0 in it and its parents)")
    from .cgroups import Cgroup

    busy = max([len(Cgroup({name: path}).pids()) for name, path in cg.paths.items() if path not in cg.made],
               default=0)
    if busy:
        log.warning(f"container's cgroup is not empty: {busy} process(es) found")


def create(store: Store, container_id: str, cfg: Config, opts: CreateOptions, log: Logger) -> State:
    """Makes the container and returns its state once the init is parked, waiting for `start`."""
    from . import plan, sync
    from .cgroups.make import make_cgroups
    from .linux import unixsock
    from .linux.idmap import setgroups_allowed

    check_preserved(opts.preserve_fds, listen_fds())
    bundle = fs.abspath(opts.bundle)
    rootfs = fs.realpath(fs.join(bundle, cfg.root_path))
    check(cfg, opts, rootfs)
    log.debug(f"bundle {bundle}: config.json read, rootfs {rootfs}")
    unprivileged = posix.geteuid() != 0
    me = posix.getpid()
    st = State(id=container_id, bundle=bundle, rootfs=rootfs, created=state.now_rfc3339(),
               creator=me, creator_start=state.proc_start_time(me) or 0, annotations=cfg.annotations,
               has_process=cfg.process is not None, net_devices=cfg.net_devices,
               hooks={k: hooks.to_json(cfg.hooks.get(k, [])) for k in ("poststart", "poststop")})
    rootfs_layer = cfg.annotations.get(layer.ROOTFS_ANNOTATION)
    if rootfs_layer or cfg.namespace("mount") is None:
        st.host_mounts = {rootfs: mounts_at(rootfs)}
    lock = store.claim(st)  # from here on, a create killed midway leaves what `delete --force` needs
    undo = Undo(state_dir=store.dir(container_id))
    undo.host_mounts = st.host_mounts
    try:
        start_fd = unixsock.listen(f"{undo.state_dir}/{START_SOCKET}", unixsock.SOCK_SEQPACKET).detach()
        undo.fds.append(start_fd)
        console_fd = opts.console_fd if cfg.process is not None and cfg.process.terminal else -1
        if opts.console_socket:
            console_fd = connect_socket(opts.console_socket)
            undo.fds.append(console_fd)
        listen = listen_fds()
        options = plan.Options(rootfs=rootfs, bundle=bundle, start_fd=start_fd, console_fd=console_fd,
                               keep_fds=opts.preserve_fds + listen, no_pivot=opts.no_pivot,
                               keyring=None if opts.no_new_keyring else f"_ses.{container_id}",
                               ns_fds=open_namespaces(cfg.namespaces, undo),
                               extra_env=[f"LISTEN_FDS={listen}"] if listen else [], rootless=unprivileged,
                               setgroups=setgroups_allowed(cfg.namespace("user"), cfg.gid_mappings, unprivileged))
        if cfg.seccomp and cfg.process:
            from .linux.seccomp import compile_filter

            options.seccomp = compile_filter(cfg.seccomp)
        if rootfs_layer:
            layer.mount(rootfs_layer, rootfs, st.host_mounts[rootfs])
        if cfg.process:
            options.home = image_home(rootfs, cfg.process.user.uid)
        options.trees = _source_trees(cfg, bundle, undo, unprivileged)
        if cfg.intel_rdt:
            from .linux import resctrl

            undo.resctrl = resctrl.prepare(cfg.intel_rdt, container_id, resctrl.mountpoint())
            st.resctrl = undo.resctrl.to_json()
            options.resctrl_tasks = undo.resctrl.tasks()
        cg = make_cgroups(cfg.cgroups_path, container_id, cfg.resources, opts.rootless_cgroups, log.warning)
        undo.cgroup = cg
        log.debug(f"cgroup {' '.join(sorted(set(cg.paths.values()))) or '(none)'}")
        _check_cgroup(cg, log)
        st.cgroup = cg.to_json()
        store.save(st)

        def mounted(pid: int) -> tuple[int, int]:
            """Before pivot_root: record the init, run prestart and createRuntime hooks; the states the
            in-container hooks read."""
            st.pid, st.start_time = pid, state.proc_start_time(pid) or 0
            st.namespaces = namespace_paths(cfg, pid)
            store.save(st)
            if cfg.net_devices:  # before the hooks, which may configure them
                from .linux.netdev import move_in

                undo.devices = move_in(cfg.net_devices, st.namespaces["network"], holder(store, container_id))
            created = hooks.hook_state(st, state.CREATED)
            for kind in ("prestart", "createRuntime"):
                log.debug(f"init {pid}: mounts made; {len(cfg.hooks.get(kind, []))} {kind} hook(s)")
                hooks.run(kind, cfg.hooks.get(kind, []), created)
            return hooks.state_fd(created), hooks.state_fd(hooks.hook_state(st, state.RUNNING))

        def userns(pid: int) -> None:
            from .linux.idmap import write_maps

            write_maps(pid, cfg.uid_mappings, cfg.gid_mappings, unprivileged)

        def notify(pid: int, fd: int) -> None:
            from .linux.seccomp import send_to_listener

            send_to_listener(cfg.seccomp, fd, pid, {**hooks.hook_state(st, state.CREATING), "pid": pid})

        pid, sock = sync.until_ready(plan.build(cfg, options, cg), cg, sync.Handlers(userns, mounted, notify),
                                     log, undo)
        sock.close()  # the init answers `start` from now on
        st.ready = True
        store.save(st)
        log.debug(f"init {st.pid} ready, waiting for start")
        if opts.pid_file:
            write_pid_file(opts.pid_file, st.pid)
        if opts.pidfd_socket:
            send_pidfd(opts.pidfd_socket, st.pid, "standard")
        if undo.devices is not None:
            undo.devices.close()  # the container's namespace holds them from now on
    except BaseException:
        undo.run()
        lock.release()
        raise
    lock.release()
    return st
