"""Turns a parsed config into the flat list of steps the C executor runs inside the new container.

Every decision is made here, in Python, before the clone: which namespaces to join or make, every mount
with its flags, the devices, the user and its groups, the capabilities, the fds to keep, where the seccomp
filter goes. The child only executes. The order rules (tests/unit/test_plan.py holds the plan to them):
cgroups are joined first; the user namespace is made or joined before the others; the rootfs mounts come
before pivot_root, masked and read-only paths after it; the death signal is cleared before READY; a seccomp
filter comes last before execve under no_new_privs (before READY if it notifies), else before the user
switch, while the executor still has CAP_SYS_ADMIN.
"""
from __future__ import annotations

import _signal
import posix
from _stat import S_IFBLK, S_IFCHR, S_IFIFO  # stat.py's C core: stat.py costs a create 0.2 M instructions

from . import hooks
from . import steps as st
from .defaults import DEFAULT_DEVICES, DEFAULT_PATH
from .errors import ConfigError
from .linux import caps, cpulist, fs, lsm, mountopts, sched
from .linux.mountinfo import filesystem_of, mountpoint_of
from .linux.mountopts import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT
from .linux.mountopts import MS_SLAVE, MS_UNBINDABLE, PROPAGATION
from .linux.rlimits import RLIMITS
from .record import Record, field
from .spec import Config, CPUAffinity, MemoryPolicy, Mount, Namespace, Process

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .cgroups import Cgroup

CLONE_FLAGS = {
    "mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000,
    "pid": 0x20000000, "network": 0x40000000, "cgroup": 0x02000000, "time": 0x00000080,
}
# setns(2) order: the user namespace first (it owns the others), mount last of the rest.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")

DEV_SYMLINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
DEVICE_TYPES = {"c": S_IFCHR, "u": S_IFCHR, "b": S_IFBLK, "p": S_IFIFO}


class Options(Record):
    """What the command line and the runtime's own set-up add to the config."""
    rootfs: str
    bundle: str
    start_fd: int = -1  # the listening socket create's init waits on for `start` (exec has none)
    console_fd: int = -1
    keep_fds: int = 0  # --preserve-fds and LISTEN_FDS: fds 3 .. 3+keep_fds-1 stay open
    no_pivot: bool = False
    keyring: str | None = None  # name of the container's own session keyring (None: --no-new-keyring)
    seccomp: tuple[list[int], int] | None = None  # compiled linux.seccomp: BPF program, seccomp(2) flags
    ns_fds: dict[str, int] = field(default_factory=dict)  # namespace type → fd opened from its path
    extra_env: list[str] = field(default_factory=list)
    rootless: bool = False  # the runtime is not root: it writes id maps as the owner of the new user namespace
    setgroups: bool = True  # whether setgroups(2) is allowed in the container's user namespace
    trees: dict[int, int] = field(default_factory=dict)  # mount index → fd of a detached copy of its source
    resctrl_tasks: list[str] = field(default_factory=list)  # linux.intelRdt: the groups' tasks files to join
    home: str = "/"  # HOME where process.env has none: the image's for the process's user (see home())


class Plan(Record):
    steps: list[st.Step]
    warnings: list[str] = field(default_factory=list)  # what the runtime says before it runs the plan


def _plan(steps: list[st.Step], opts: Options, warnings: list[str]) -> Plan:
    """The steps, after a first one that closes every fd of the runtime's but those the steps use and the
    caller's preserved ones (3 .. 3+keep_fds-1): the init holds nothing else even while it is parked."""
    keep = st.fds_used(steps) | set(range(3, 3 + opts.keep_fds))
    return Plan([st.CloseFds("close the runtime's fds", keep=sorted(keep)), *steps], warnings)


def _cgroup_steps(cgroup: Cgroup, affinity: CPUAffinity | None) -> list[st.Step]:
    """The cgroups first: before a user namespace takes the right to write them, before a cgroup namespace.
    An exec's initial CPU affinity is set before the join (the spec: "before the transition to container's
    cgroup"; the executor is then not born in the cgroup). Without execCPUAffinity (and always for the init,
    which the spec exempts from it) the affinity the runtime had is dropped once the cgroup is joined, as
    runc and crun do, so only the container's cpuset counts."""
    steps: list[st.Step] = [st.JoinCgroup(f"join cgroup {path}", path=path, v2=not name)
                            for name, path in cgroup.paths.items()]
    if affinity and affinity.initial:
        return [st.CpuAffinity("process.execCPUAffinity.initial", mask=cpulist.mask(affinity.initial)), *steps]
    if affinity is None:
        steps.append(st.CpuAffinity("reset CPU affinity"))
    return steps


def _namespace_steps(namespaces: list[Namespace], time_offsets: dict[str, tuple[int, int]],
                     opts: Options, cgroup: Cgroup, affinity: CPUAffinity | None = None) -> list[st.Step]:
    by_type = {ns.type: ns for ns in namespaces}
    steps = _cgroup_steps(cgroup, affinity)
    # resctrl groups, joined as the cgroups are (a tasks file takes "0" as the writer itself), while the host's
    # /sys/fs/resctrl is still in reach
    steps += [st.WriteFile("linux.intelRdt", path=path, data="0") for path in opts.resctrl_tasks]
    user = by_type.get("user")
    if user and user.path:
        steps.append(st.Setns(f"linux.namespaces (user {user.path})", fd=opts.ns_fds["user"],
                              nstype=CLONE_FLAGS["user"]))
    elif user:
        sync: list[st.Step] = [st.Sync("user namespace", message=st.USERNS, wait=True)]
        if opts.rootless:
            # An unprivileged parent (or newuidmap) may open our /proc/<pid>/uid_map only while we are
            # dumpable; nothing of the container runs yet, and we are non-dumpable again before it does.
            sync = [st.Dumpable("id maps", value=1), *sync, st.Dumpable("id maps", value=0)]
        steps += [st.Unshare("linux.namespaces (user)", flags=CLONE_FLAGS["user"]), *sync,
                  st.User("user namespace root", uid=0, gid=0, setgroups=False)]
    for kind in JOIN_ORDER[1:]:
        ns = by_type.get(kind)
        if ns and ns.path:
            steps.append(st.Setns(f"linux.namespaces ({kind} {ns.path})", fd=opts.ns_fds[kind],
                                  nstype=CLONE_FLAGS[kind]))
    new = 0
    for ns in namespaces:
        if not ns.path and ns.type != "user":
            new |= CLONE_FLAGS[ns.type]
    if new:
        steps.append(st.Unshare("linux.namespaces", flags=new))
    if time_offsets:
        data = "".join(f"{clock} {s} {ns}\n" for clock, (s, ns) in time_offsets.items())
        steps.append(st.WriteFile("linux.timeOffsets", path="/proc/self/timens_offsets", data=data))
    # The container's init is a fresh child: it lands in the new pid and time namespaces. It dies with the
    # runtime until it is ready (then the death signal is cleared).
    steps += [st.Fork("fork container init", death_signal=_signal.SIGKILL), st.Setsid("setsid")]
    return steps


def bind_source(m: Mount, bundle: str) -> str:
    return fs.join(bundle, m.source)


def _cgroup_mount(i: int, m: Mount, o: mountopts.MountOptions, cgroup: Cgroup, cgroupns: bool) -> list[st.Step]:
    what = f"mounts[{i}] ({m.destination})"
    ro = o.flags & MS_RDONLY
    if cgroup.v2_path and len(cgroup.paths) == 1:
        if cgroupns:
            return [st.Mount(what, target=m.destination, source="cgroup", fstype="cgroup2", flags=o.flags)]
        return [st.Mount(what, target=m.destination, source=cgroup.v2_path, flags=MS_BIND | MS_REC | o.flags)]
    base = MS_NOSUID | MS_NODEV | MS_NOEXEC
    steps: list[st.Step] = [st.Mount(what, target=m.destination, source="tmpfs", fstype="tmpfs", flags=base,
                                     data="mode=755")]
    for path in sorted(cgroup.paths.values()):
        steps.append(st.Mount(what, target=f"{m.destination}/{_hierarchy_dir(path)}", source=path,
                              flags=MS_BIND | MS_REC | base | ro))
    if ro:
        steps.append(st.Mount(what, target=m.destination, flags=MS_REMOUNT | MS_RDONLY | base))
    return steps


def _hierarchy_dir(path: str) -> str:
    """/sys/fs/cgroup/cpu/a/b → cpu: the name of the hierarchy's mount point."""
    rel = fs.relpath(path, "/sys/fs/cgroup")
    return rel.split("/", 1)[0]


def _root_steps(cfg: Config, opts: Options, host_ns: bool) -> list[st.Step]:
    steps: list[st.Step] = []
    if not host_ns:
        # Propagation is changed only in a mount namespace the container has (new or joined), never the host's.
        prop = PROPAGATION.get(cfg.rootfs_propagation, MS_SLAVE | MS_REC)
        if prop == MS_UNBINDABLE | MS_REC:
            prop = MS_SLAVE | MS_REC  # every bind from the host would be refused: runbindable waits for the pivot
        # The mount that holds the rootfs (the rootfs itself where an engine mounted it there) must not be
        # shared: the rootfs bind would be its peer, pivot_root refuses a shared new root, and our mounts would
        # leak to the host. A slave keeps receiving the host's, as asked; "shared" is set again after the pivot.
        steps += [st.SetRootPropagation("linux.rootfsPropagation", flags=prop),
                  st.Mount("rootfs parent mount", target=mountpoint_of(opts.rootfs), where=st.HOST_PATH,
                           propagation=MS_SLAVE if prop & MS_SLAVE else MS_PRIVATE)]
    return steps + [
        st.Mount("root.path", target=opts.rootfs, source=opts.rootfs, flags=MS_BIND | MS_REC, where=st.HOST_PATH),
        st.SetRoot("root.path", path=opts.rootfs),
    ]


def _mount_steps(cfg: Config, opts: Options, cgroup: Cgroup) -> list[st.Step]:
    steps: list[st.Step] = []
    cgroupns = bool(cfg.namespace("cgroup"))
    for i, m in enumerate(cfg.mounts):
        o = mountopts.parse(m.options)
        what = f"mounts[{i}] ({m.destination})"
        if _is_dev(m):
            o.flags &= ~MS_RDONLY  # made read-only after pivot_root (_dev_readonly)
        if m.type == "cgroup" or m.type == "cgroup2":
            steps += _cgroup_mount(i, m, o, cgroup, cgroupns)
            continue
        data = lsm.mount_data(m.type, ",".join(o.data) or None, cfg.mount_label)
        if o.bind or m.type == "bind":
            src = bind_source(m, opts.bundle)
            if m.destination == "/proc" and filesystem_of(src) != "proc":
                raise ConfigError(f"only a proc mount can go on /proc: {src} is not one", path=f"mounts[{i}].destination")
            steps.append(st.Mount(what, target=m.destination, source=src, flags=o.flags | MS_BIND,
                                  as_file=fs.exists(src) and not fs.isdir(src),
                                  attr_set=o.attr_set, attr_clr=o.attr_clr, tree_fd=opts.trees.get(i, -1)))
        else:
            # proc and sysfs go on the very path named, never through a symlink (as runc insists).
            where = st.IN_ROOT_EXACT if m.type in ("proc", "sysfs") else st.IN_ROOT
            steps.append(st.Mount(what, target=m.destination, source=m.source or m.type, fstype=m.type, data=data,
                                  flags=o.flags, attr_set=o.attr_set, attr_clr=o.attr_clr, where=where))
        for p in o.propagation:
            steps.append(st.Mount(what, target=m.destination, propagation=p))
    steps += _device_steps(cfg)
    if any(m.destination == "/dev/pts" for m in cfg.mounts):
        steps.append(st.Symlink("/dev/ptmx", target="pts/ptmx", path="/dev/ptmx", replace=True))
    return steps


def _is_dev(m: Mount) -> bool:
    return fs.normpath(m.destination) == "/dev"


def _dev_readonly(cfg: Config) -> list[st.Step]:
    """A read-only /dev is mounted writable and made read-only once the mounts, device nodes and links below
    it are in place, as runc does: /dev/pts and the rest need their mount points made there first."""
    for i, m in reversed(list(enumerate(cfg.mounts))):
        if _is_dev(m):
            flags = mountopts.parse(m.options).flags
            if not flags & MS_RDONLY:
                return []
            return [st.Mount(f"mounts[{i}] ({m.destination})", target="/dev",
                             flags=MS_REMOUNT | MS_BIND | (flags & ~MS_REC))]
    return []


def _device_steps(cfg: Config) -> list[st.Step]:
    steps: list[st.Step] = []
    userns = cfg.namespace("user") is not None
    configured = {d.path for d in cfg.devices}
    devices = [(p, "c", major, minor, 0o666, 0, 0) for p, major, minor in DEFAULT_DEVICES if p not in configured]
    devices += [(d.path, d.type, d.major, d.minor, 0o666 if d.file_mode is None else d.file_mode,
                 d.uid or 0, d.gid or 0) for d in cfg.devices]
    for path, kind, major, minor, mode, uid, gid in devices:
        what = f"linux.devices ({path})"
        if userns:
            # mknod is refused in a user namespace: bind the host's node instead, as runc does.
            steps.append(st.Mount(what, target=path, source=path, flags=MS_BIND, as_file=True))
        else:
            steps.append(st.Mknod(what, path=path, mode=DEVICE_TYPES[kind] | (mode & 0o7777),
                                  dev=posix.makedev(major, minor) if kind != "p" else 0, uid=uid, gid=gid))
    for target, link in DEV_SYMLINKS:
        steps.append(st.Symlink(link, target=target, path=link))
    return steps


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _capabilities(p: Process, warnings: list[str]) -> st.Caps:
    c = p.capabilities
    inheritable, permitted = caps.mask(c["inheritable"]), caps.mask(c["permitted"])
    # The kernel raises an ambient capability only if it is permitted and inheritable: runc and crun skip the
    # others with a warning (`runc spec` itself lists ambient capabilities without inheritable ones), here one
    # line for all of them.
    skipped = [name for name in c["ambient"] if not caps.mask([name]) & inheritable & permitted]
    if skipped:
        warnings.append(f"process.capabilities.ambient: {', '.join(skipped)} not in both the inheritable and "
                        "permitted sets: not raised")
    ambient = caps.mask(c["ambient"]) & inheritable & permitted
    return st.Caps("process.capabilities", effective=caps.mask(c["effective"]), permitted=permitted,
                   inheritable=inheritable, ambient=ambient)


def _check_nodes(mp: MemoryPolicy) -> None:
    """Nodes this host lacks are refused here, by name, rather than as the kernel's bare EINVAL."""
    online = sched.host_nodes()
    if not online:
        raise ConfigError("this kernel has no NUMA memory policies", path="linux.memoryPolicy")
    missing = sorted(set(mp.nodes) - set(online))
    if missing and "MPOL_F_RELATIVE_NODES" not in mp.flags:  # relative nodes are folded onto the allowed ones
        raise ConfigError(f"{'nodes' if len(missing) > 1 else 'node'} {cpulist.text(missing)} not on this host "
                          f"(it has {cpulist.text(online)})", path="linux.memoryPolicy.nodes")


def sched_steps(p: Process, memory_policy: MemoryPolicy | None, final: list[int]) -> list[st.Step]:
    """The process's CPUs (an exec's final affinity), memory policy, I/O priority and scheduler, set while the
    executor still has its privileges and before any seccomp filter; the scheduler last (a deadline task
    may no longer change its affinity)."""
    steps: list[st.Step] = []
    if final:
        steps.append(st.CpuAffinity("process.execCPUAffinity.final", mask=cpulist.mask(final)))
    if memory_policy:
        _check_nodes(memory_policy)
        mode = sched.MPOL_MODES[memory_policy.mode]
        for flag in memory_policy.flags:
            mode |= sched.MPOL_FLAGS[flag]
        steps.append(st.MemoryPolicy("linux.memoryPolicy", mode=mode, nodes=cpulist.mask(memory_policy.nodes)))
    if p.io_priority:
        steps.append(st.IoPriority("process.ioPriority",
                                   value=sched.ioprio(p.io_priority.klass, p.io_priority.priority)))
    if p.scheduler:
        s = p.scheduler
        flags = 0
        for name in s.flags:
            flags |= sched.SCHED_FLAGS[name]
        steps.append(st.Scheduler("process.scheduler", policy=sched.POLICIES[s.policy], flags=flags, nice=s.nice,
                                  priority=s.priority, runtime=s.runtime, deadline=s.deadline, period=s.period))
    return steps


def _process_steps(p: Process, opts: Options, warnings: list[str], scheduling: list[st.Step]) -> list[st.Step]:
    # Mark every fd past the kept ones close-on-exec first: a seccomp filter loaded below may forbid
    # close_range (Docker's default profile does).
    steps: list[st.Step] = [st.CloseFrom("close fds", first=3 + opts.keep_fds)]
    if opts.console_fd >= 0:
        rows, cols = p.console_size or (0, 0)
        steps.append(st.Console("process.terminal", socket_fd=opts.console_fd, rows=rows, cols=cols))
    for r in p.rlimits:
        steps.append(st.Rlimit(f"process.rlimits ({r.type})", resource=RLIMITS[r.type], soft=r.soft, hard=r.hard))
    if p.capabilities is not None:
        steps.append(st.DropBounding("process.capabilities.bounding", keep=caps.mask(p.capabilities["bounding"])))
    for what, attr, value in lsm.exec_labels(p.apparmor_profile, p.selinux_label):
        steps.append(st.WriteFile(what, path=attr, data=value))
    # Before a filter could refuse fchown: the terminal and pipes on fds 0-2 become the user's (runc's).
    steps.append(st.ChownStdio("process.user (stdio)", uid=p.user.uid))
    # The working directory is entered as root first (the user may not be able to reach it, runc's order), and
    # again as the user only if root was refused there (a directory only the user may enter).
    steps += scheduling
    cwd = f"process.cwd ({p.cwd})"
    steps.append(st.Chdir(cwd, path=p.cwd, attempt=1))
    if opts.seccomp and not p.no_new_privileges:
        # Without no_new_privs only CAP_SYS_ADMIN may load a filter: load it while we still have it.
        steps.append(_seccomp_step(opts.seccomp))
    groups = p.user.additional_gids
    if groups and not opts.setgroups:
        raise ConfigError("cannot be set: setgroups is denied in the container's user namespace (a runtime "
                          "without root maps only its own id; map ranges through newgidmap)",
                          path="process.user.additionalGids")
    steps.append(st.User("process.user", uid=p.user.uid, gid=p.user.gid, groups=groups, setgroups=opts.setgroups))
    if p.capabilities is not None:
        steps.append(_capabilities(p, warnings))
    if p.no_new_privileges:
        steps.append(st.NoNewPrivs("process.noNewPrivileges"))
    steps.append(st.Umask("process.user.umask", mask=0o022 if p.user.umask is None else p.user.umask))
    steps.append(st.Chdir(cwd, path=p.cwd, attempt=2))
    return steps


def _seccomp_step(seccomp: tuple[list[int], int]) -> st.Seccomp:
    return st.Seccomp("linux.seccomp", program=seccomp[0], flags=seccomp[1])


def _notify(opts: Options) -> bool:
    """A filter with SCMP_ACT_NOTIFY hands its fd to the runtime, which must still be there to pass it on."""
    if not opts.seccomp:
        return False
    from .linux.seccomp import FLAG_NEW_LISTENER  # only with a filter: the module costs a plain run an import

    return bool(opts.seccomp[1] & FLAG_NEW_LISTENER)


def _late_seccomp(p: Process, opts: Options, before_ready: bool) -> list[st.Step]:
    """With no_new_privs the filter goes last before execve, so none of our own steps runs under it; a notify
    filter goes last before READY instead, while the runtime still listens (as runc does it)."""
    if not (opts.seccomp and p.no_new_privileges) or before_ready != _notify(opts):
        return []
    return [_seccomp_step(opts.seccomp)]


def environment(p: Process, opts: Options) -> list[str]:
    env = list(p.env) + opts.extra_env
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + opts.home)
    return env


def home(passwd: bytes | None, uid: int) -> str:
    """HOME from the image's /etc/passwd (its content, None where it has none), as runc does when the config
    sets none."""
    for line in (passwd or b"").decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) > 5 and parts[2] == str(uid):
            return parts[5]
    return "/"


def _search_path(env: list[str]) -> str:
    return next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)


def _process_tail(p: Process, opts: Options, warnings: list[str], start: list[st.Step],
                  scheduling: list[st.Step]) -> list[st.Step]:
    """What create and exec share from the process set-up to execve; `start` are the steps between READY and
    the late seccomp filter (create's wait for `start` and its startContainer hooks)."""
    env = environment(p, opts)
    return [
        *_process_steps(p, opts, warnings, scheduling),
        st.FindExec("process.args", name=p.args[0], search_path=_search_path(env)),
        # The death signal goes before READY: once told, the parent may exit at once.
        st.Pdeathsig("outlive the runtime", signal=0),
        *_late_seccomp(p, opts, before_ready=True),
        st.Sync("ready", message=st.READY),
        *start,
        *_late_seccomp(p, opts, before_ready=False),
        st.Exec("process.args", argv=p.args, envp=env),
    ]


def build(cfg: Config, opts: Options, cgroup: Cgroup) -> Plan:
    """The whole plan of `create`: namespaces, rootfs, process, then wait for `start` and execve."""
    # root.path and the mounts are set up in whatever mount namespace the container ends up in: a new one,
    # one joined by path, or (no "mount" entry: inherit the runtime's) the host's, where `delete` takes them
    # down again.
    host_ns = cfg.namespace("mount") is None
    warnings: list[str] = []
    steps = _namespace_steps(cfg.namespaces, cfg.time_offsets, opts, cgroup)
    steps += _root_steps(cfg, opts, host_ns)
    steps += _mount_steps(cfg, opts, cgroup)
    if cfg.process and cfg.process.oom_score_adj is not None:
        steps.append(st.WriteFile("process.oomScoreAdj", path="/proc/self/oom_score_adj",
                                  data=str(cfg.process.oom_score_adj)))
    steps.append(st.Sync("prestart and createRuntime hooks", message=st.MOUNTED, wait=True))
    in_container = hooks.as_steps("createContainer", cfg.hooks.get("createContainer", []))
    if in_container:  # they run in the rootfs directory, as runc runs them (startContainer: in process.cwd)
        steps.append(st.Chdir("hooks.createContainer (working directory)", path=opts.rootfs))
    steps += in_container
    if host_ns:
        steps.append(st.Pivot("chroot", how=st.CHROOT))  # nothing may be moved onto the host's "/"
    else:
        steps.append(st.Pivot("chroot" if opts.no_pivot else "pivot_root",
                              how=st.MOVE_CHROOT if opts.no_pivot else st.PIVOT_ROOT))
    steps += _dev_readonly(cfg)
    for key, value in cfg.sysctl.items():
        steps.append(st.WriteFile(f"linux.sysctl ({key})", path=_sysctl_path(key), data=value))
    for i, path in enumerate(cfg.masked_paths):
        steps.append(st.Mask(f"linux.maskedPaths[{i}] ({path})", path=path))
    for i, path in enumerate(cfg.readonly_paths):
        steps.append(st.Readonly(f"linux.readonlyPaths[{i}] ({path})", path=path))
    if cfg.root_readonly:
        steps.append(st.Readonly("root.readonly", path="/", must_exist=True, in_place=True))
    if cfg.rootfs_propagation and not host_ns:
        # On the new root, once our own mounts are made ("runbindable" would refuse the masks' binds).
        steps.append(st.SetRootPropagation("linux.rootfsPropagation", flags=PROPAGATION[cfg.rootfs_propagation]))
    if opts.keyring:
        steps.append(st.Keyring("session keyring", name=opts.keyring))
    if cfg.hostname is not None:
        steps.append(st.Hostname("hostname", name=cfg.hostname))
    if cfg.domainname is not None:
        steps.append(st.Domainname("domainname", name=cfg.domainname))
    if cfg.personality:
        domain = {"LINUX": 0x0000, "LINUX32": 0x0008}[cfg.personality["domain"]]
        steps.append(st.Personality("linux.personality", domain=domain))
    wait = st.WaitStart("wait for start", listen_fd=opts.start_fd)
    if cfg.process is None:
        # Nothing to run: park until start (which refuses) or delete, as the spec allows.
        return _plan(steps + [st.CloseFrom("close fds", first=3), st.Pdeathsig("outlive the runtime", signal=0),
                              st.Sync("ready", message=st.READY), wait], opts, warnings)
    starting = [wait, *hooks.as_steps("startContainer", cfg.hooks.get("startContainer", []), st.RUNNING_STATE)]
    scheduler = cfg.process.scheduler
    if (scheduler and scheduler.policy == "SCHED_DEADLINE" and "SCHED_FLAG_RESET_ON_FORK" not in scheduler.flags
            and cfg.hooks.get("startContainer")):
        raise ConfigError("a SCHED_DEADLINE process cannot fork, and the startContainer hooks are run from it: "
                          "add SCHED_FLAG_RESET_ON_FORK", path="process.scheduler")
    scheduling = sched_steps(cfg.process, cfg.memory_policy, [])
    return _plan(steps + _process_tail(cfg.process, opts, warnings, starting, scheduling), opts, warnings)


def build_exec(namespaces: list[Namespace], process: Process, opts: Options, cgroup: Cgroup,
               memory_policy: MemoryPolicy | None = None) -> Plan:
    """The plan of `exec`: join the container's cgroups and every namespace (user first), then the process
    set-up, with the process's execCPUAffinity and the container's memory policy."""
    warnings: list[str] = []
    affinity = process.exec_cpu_affinity
    steps = _namespace_steps(namespaces, {}, opts, cgroup, affinity)
    if not any(ns.type == "mount" for ns in namespaces):
        # The container lives in the host's mount namespace: its root is a chroot, so is the new process's.
        steps += [st.SetRoot("root.path", path=opts.rootfs), st.Pivot("chroot", how=st.CHROOT)]
    if process.oom_score_adj is not None:
        steps.append(st.WriteFile("process.oomScoreAdj", path="/proc/self/oom_score_adj",
                                  data=str(process.oom_score_adj)))
    scheduling = sched_steps(process, memory_policy, affinity.final if affinity else [])
    return _plan(steps + _process_tail(process, opts, warnings, [], scheduling), opts, warnings)
