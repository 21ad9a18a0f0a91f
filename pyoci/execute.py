"""`exec`: a new process in a container — every namespace joined (user first), its cgroup, and the
container's process settings unless the caller overrides them."""
from __future__ import annotations

import posix

from . import jsonio
from .create import Undo, connect_socket, image_home, open_namespaces, send_pidfd, write_pid_file
from .errors import ConfigError, PyociError
from .linux.files import read_bytes
from .record import Record, field
from .spec import Namespace, Process, User, merge_env
from .state import reap

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .container import Runtime
    from .state import Lock, State


class ExecOptions(Record):
    """What the exec command line says; None means "as the container's config has it"."""
    args: list[str] = field(default_factory=list)
    process_file: str | None = None
    tty: bool = False
    console_socket: str | None = None
    detach: bool = False
    pid_file: str | None = None
    preserve_fds: int = 0
    env: list[str] = field(default_factory=list)
    cwd: str | None = None
    user: str | None = None
    additional_gids: list[str] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    cgroup: list[str] = field(default_factory=list)  # exec --cgroup: sub-cgroups to run in, as runc takes them
    apparmor: str | None = None
    process_label: str | None = None
    pidfd_socket: str | None = None
    ignore_paused: bool = False  # a paused container too: the process runs once it is resumed


class ExecProcess(Record):
    """A process exec started: our child."""
    pid: int
    console: int = -1  # its pty master, where it has a terminal and the caller gave no console socket

    def wait(self) -> int:
        """Its exit status (128 + the signal that killed it)."""
        return reap(self.pid) or 0


def _from_file(path: str, base: Process | None) -> Process:
    """runc's --process FILE: what it leaves out of user is 0 (root), and its capabilities and LSM labels,
    where it names none, are the container's (runc's rules: not every power of the executor's). Errors name
    the file."""
    from . import spec

    what = f"--process {path}"
    try:
        raw = jsonio.loads(read_bytes(path), parse_float=jsonio.Real)
    except OSError as exc:
        raise PyociError(what, exc.errno) from None
    except ValueError as exc:
        raise PyociError(f"{what}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PyociError(f"{what}: not a process object")
    if isinstance(raw.setdefault("user", {}), dict):
        raw["user"] = {"uid": 0, "gid": 0, **raw["user"]}
    try:
        spec.validate_schema({"ociVersion": "1.0.0", "process": raw})
        process = spec.parse_process(raw)
    except ConfigError as exc:
        where = exc.path.partition(".")[2]
        raise PyociError(f"{what}: {where + ': ' if where else ''}{exc.msg}") from None
    if base is not None:
        if "capabilities" not in raw:
            process.capabilities = base.capabilities
        process.apparmor_profile = process.apparmor_profile or base.apparmor_profile
        process.selinux_label = process.selinux_label or base.selinux_label
    return process


def _from_flags(opts: ExecOptions, base: Process) -> Process:
    from .linux.caps import CAPABILITIES

    if not opts.args:
        raise PyociError("exec needs a command (or --process FILE)")
    user = User(base.user.uid, base.user.gid, base.user.umask, list(base.user.additional_gids))
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        try:
            user.uid, user.gid = int(uid), int(gid) if gid else user.gid
        except ValueError:
            raise PyociError(f"--user {opts.user}: use UID[:GID] numbers") from None
    try:
        if opts.additional_gids:
            user.additional_gids = [int(g) for g in opts.additional_gids]
    except ValueError:
        raise PyociError("--additional-gids takes numbers") from None
    caps = {k: list(v) for k, v in (base.capabilities or {}).items()} if base.capabilities is not None else None
    for name in opts.caps:
        if name not in CAPABILITIES:
            raise PyociError(f"--cap {name}: unknown capability")
        if caps is not None:
            for kind in ("bounding", "effective", "permitted"):
                if name not in caps[kind]:
                    caps[kind].append(name)
    cwd = opts.cwd or base.cwd
    if not cwd.startswith("/"):
        raise PyociError(f"--cwd {cwd}: must be absolute")
    return Process(args=opts.args, cwd=cwd, env=merge_env(base.env, opts.env), terminal=opts.tty, user=user,
                   capabilities=caps, rlimits=base.rlimits, no_new_privileges=base.no_new_privileges or opts.no_new_privs,
                   oom_score_adj=None, apparmor_profile=opts.apparmor or base.apparmor_profile,
                   selinux_label=opts.process_label or base.selinux_label)


def _with_defaults(process: Process, base: Process | None) -> Process:
    """What a --process file leaves out of the scheduling settings comes from the container's process, as runc
    does: its scheduler, I/O priority and execCPUAffinity."""
    if base is not None:
        for name in ("scheduler", "io_priority", "exec_cpu_affinity"):
            if getattr(process, name) is None:
                setattr(process, name, getattr(base, name))
    return process


def exec_process(runtime: Runtime, st: State, opts: ExecOptions, lock: Lock) -> ExecProcess:
    """Starts the process (the container's lock held until it is ready) and returns once it has execve'd."""
    from . import plan, spec, sync
    from .cgroups import Cgroup
    from .linux import unixsock
    from .linux.idmap import setgroups_allowed
    from .messages import until_exec

    undo = Undo(state_dir=None)
    ours = None
    try:
        try:
            cgroup = Cgroup.from_json(st.cgroup)
            if opts.cgroup:
                from .cgroups.sub import parse_sub_paths, within

                cgroup = within(cgroup, parse_sub_paths(opts.cgroup))
            cfg = spec.load(st.bundle)
            if opts.process_file:
                process = _from_file(opts.process_file, cfg.process)
            else:
                if cfg.process is None:
                    raise ConfigError("required to exec with the container's settings", path="process")
                process = _from_flags(opts, cfg.process)
            process = _with_defaults(process, cfg.process)
            runtime.log.debug(f"process {jsonio.dumps(process.args)} in the namespaces of init {st.pid}")
            if process.terminal and not opts.console_socket and opts.detach:
                raise PyociError("--tty with --detach needs --console-socket")
            console_fd = -1
            if process.terminal:
                if opts.console_socket:
                    console_fd = connect_socket(opts.console_socket)
                else:
                    ours = unixsock.socketpair(unixsock.SOCK_STREAM)
                    console_fd = ours[1].detach()
                undo.fds.append(console_fd)
            namespaces = [Namespace(kind, path) for kind, path in st.namespaces.items()]
            user = next((ns for ns in namespaces if ns.type == "user"), None)
            options = plan.Options(rootfs=st.rootfs, bundle=st.bundle, console_fd=console_fd,
                                   keep_fds=opts.preserve_fds, ns_fds=open_namespaces(namespaces, undo),
                                   setgroups=setgroups_allowed(user, cfg.gid_mappings, posix.geteuid() != 0),
                                   home=image_home(st.rootfs, process.user.uid))
            if cfg.seccomp:
                from .linux.seccomp import compile_filter

                options.seccomp = compile_filter(cfg.seccomp)
            if st.resctrl:
                from .linux.resctrl import Group

                options.resctrl_tasks = Group.from_json(st.resctrl).tasks()

            def notify(pid: int, fd: int) -> None:
                from .hooks import hook_state
                from .linux.seccomp import send_to_listener

                send_to_listener(cfg.seccomp, fd, pid, hook_state(st, "running"))

            exec_plan = plan.build_exec(namespaces, process, options, cgroup, cfg.memory_policy)
            pid, sock = sync.until_ready(exec_plan, cgroup, sync.Handlers(seccomp=notify), runtime.log, undo)
        finally:
            lock.release()
        try:
            until_exec(sock.fileno(), runtime.log)
        finally:
            sock.close()
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
        if opts.pidfd_socket:
            send_pidfd(opts.pidfd_socket, pid, "setns")
    except BaseException:
        undo.run()
        if ours:
            ours[0].close()
        raise
    master = -1
    if ours:
        _, fds = unixsock.recv_fds(ours[0], 256, 1)
        ours[0].close()
        master = fds[0] if fds else -1
    return ExecProcess(pid, master)
