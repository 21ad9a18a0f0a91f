"""Turns a parsed config into the flat list of steps the C executor runs inside the new container.

Every decision is made here, in Python, before the clone: which namespaces to join or make, every mount
with its flags, the devices, the user and capabilities, the fds to keep. The child then only executes.
"""
from __future__ import annotations

import os
import stat

from .cgroups import Cgroup
from .errors import ConfigError
from .linux import caps, lsm, mountopts
from .linux.mountinfo import filesystem_of, mountpoint_of
from .linux.mountopts import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT
from .linux.mountopts import MS_SLAVE, MS_UNBINDABLE, PROPAGATION
from .linux.rlimits import RLIMITS
from .linux.shim import MSG_MOUNTED, MSG_READY, MSG_USERNS, Step
from .record import field, record
from .spec import Config, Hook, Mount, Namespace, Process

CLONE_FLAGS = {
    "mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000,
    "pid": 0x20000000, "network": 0x40000000, "cgroup": 0x02000000, "time": 0x00000080,
}
# setns(2) order: the user namespace first (it owns the others), mount last of the rest.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")

DEFAULT_DEVICES = [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8),
                   ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)]
DEV_SYMLINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


@record
class Options:
    """What the command line adds to the config."""
    rootfs: str
    bundle: str
    fifo_fd: int = -1  # the exec fifo create's init waits on (exec has none)
    console_fd: int = -1
    keep_fds: int = 0  # --preserve-fds and LISTEN_FDS: fds 3 .. 3+keep_fds-1 stay open
    no_pivot: bool = False
    keyring: str | None = None  # name of the container's own session keyring (None: --no-new-keyring)
    seccomp: tuple[list[int], int] | None = None  # compiled linux.seccomp: BPF program, seccomp(2) flags
    ns_fds: dict[str, int] = field(default_factory=dict)  # namespace type → fd opened from its path
    extra_env: list[str] = field(default_factory=list)
    rootless: bool = False  # the runtime is not root: it writes id maps as the owner of the new user namespace
    idmap_trees: dict[int, int] = field(default_factory=dict)  # mount index → fd of its detached idmapped copy


def _namespace_steps(namespaces: list[Namespace], time_offsets: dict[str, tuple[int, int]],
                     opts: Options, cgroup: Cgroup) -> list[Step]:
    by_type = {ns.type: ns for ns in namespaces}
    # The cgroups first: before a user namespace takes the right to write them, before a cgroup namespace.
    steps = [Step("join_cgroup", f"join cgroup {path}", s1=path, n1=int(not name))
             for name, path in cgroup.paths.items()]
    user = by_type.get("user")
    if user and user.path:
        steps.append(Step("setns", f"linux.namespaces (user {user.path})", fd=opts.ns_fds["user"],
                          n1=CLONE_FLAGS["user"]))
    elif user:
        sync = [Step("sync", "user namespace", n1=MSG_USERNS, n2=1)]
        if opts.rootless:
            # An unprivileged parent (or newuidmap) may open our /proc/<pid>/uid_map only while we are
            # dumpable; nothing of the container runs yet, and we are non-dumpable again before it does.
            sync = [Step("dumpable", "id maps", n1=1), *sync, Step("dumpable", "id maps", n1=0)]
        steps += [Step("unshare", "linux.namespaces (user)", flags=CLONE_FLAGS["user"]), *sync,
                  Step("user", "user namespace root", n1=0, n2=0)]
    for kind in JOIN_ORDER[1:]:
        ns = by_type.get(kind)
        if ns and ns.path:
            steps.append(Step("setns", f"linux.namespaces ({kind} {ns.path})", fd=opts.ns_fds[kind],
                              n1=CLONE_FLAGS[kind]))
    new = 0
    for ns in namespaces:
        if not ns.path and ns.type != "user":
            new |= CLONE_FLAGS[ns.type]
    if new:
        steps.append(Step("unshare", "linux.namespaces", flags=new))
    if time_offsets:
        data = "".join(f"{clock} {s} {ns}\n" for clock, (s, ns) in time_offsets.items())
        steps.append(Step("write_file", "linux.timeOffsets", s1="/proc/self/timens_offsets", s2=data))
    # The container's init is a fresh child: it lands in the new pid and time namespaces.
    steps += [Step("fork", "fork container init"), Step("setsid", "setsid")]
    return steps


def bind_source(m: Mount, bundle: str) -> str:
    return m.source if os.path.isabs(m.source) else os.path.join(bundle, m.source)


def _cgroup_mount(i: int, m: Mount, o: mountopts.MountOptions, cgroup: Cgroup, cgroupns: bool) -> list[Step]:
    what = f"mounts[{i}] ({m.destination})"
    ro = o.flags & MS_RDONLY
    if cgroup.v2_path and len(cgroup.paths) == 1:
        if cgroupns:
            return [Step("mount", what, s1="cgroup", s2=m.destination, s3="cgroup2", flags=o.flags)]
        return [Step("mount", what, s1=cgroup.v2_path, s2=m.destination, flags=MS_BIND | MS_REC | o.flags)]
    base = MS_NOSUID | MS_NODEV | MS_NOEXEC
    steps = [Step("mount", what, s1="tmpfs", s2=m.destination, s3="tmpfs", flags=base, s4="mode=755")]
    for path in sorted(cgroup.paths.values()):
        steps.append(Step("mount", what, s1=path, s2=f"{m.destination}/{_hierarchy_dir(path)}", flags=MS_BIND | MS_REC | base | ro))
    if ro:
        steps.append(Step("mount", what, s2=m.destination, flags=MS_REMOUNT | MS_RDONLY | base))
    return steps


def _hierarchy_dir(path: str) -> str:
    """/sys/fs/cgroup/cpu/a/b → cpu: the name of the hierarchy's mount point."""
    rel = os.path.relpath(path, "/sys/fs/cgroup")
    return rel.split("/", 1)[0]


def _mount_steps(cfg: Config, opts: Options, cgroup: Cgroup, host_ns: bool) -> list[Step]:
    steps = []
    if not host_ns:
        # Propagation is changed only in a mount namespace the container has (new or joined), never the host's.
        prop = PROPAGATION.get(cfg.rootfs_propagation, MS_SLAVE | MS_REC)
        if prop == MS_UNBINDABLE | MS_REC:
            prop = MS_SLAVE | MS_REC  # every bind from the host would be refused: runbindable waits for the pivot
        # The mount that holds the rootfs (the rootfs itself where an engine mounted it there) must not be
        # shared: the rootfs bind would be its peer, pivot_root refuses a shared new root, and our mounts would
        # leak to the host. A slave keeps receiving the host's, as asked; "shared" is set again after the pivot.
        steps += [Step("set_root_propagation", "linux.rootfsPropagation", flags=prop),
                  Step("mount", "rootfs parent mount", s2=mountpoint_of(opts.rootfs), n4=1,
                       flags2=MS_SLAVE if prop & MS_SLAVE else MS_PRIVATE)]
    steps += [
        Step("mount", "root.path", s1=opts.rootfs, s2=opts.rootfs, flags=MS_BIND | MS_REC, n4=1),
        Step("set_root", "root.path", s1=opts.rootfs),
    ]
    cgroupns = bool(cfg.namespace("cgroup"))
    for i, m in enumerate(cfg.mounts):
        o = mountopts.parse(m.options)
        what = f"mounts[{i}] ({m.destination})"
        if m.type == "cgroup" or m.type == "cgroup2":
            steps += _cgroup_mount(i, m, o, cgroup, cgroupns)
            continue
        data = lsm.mount_data(m.type, ",".join(o.data) or None, cfg.mount_label)
        if o.bind or m.type == "bind":
            src = bind_source(m, opts.bundle)
            if m.destination == "/proc" and filesystem_of(src) != "proc":
                raise ConfigError(f"only a proc mount can go on /proc: {src} is not one", path=f"mounts[{i}].destination")
            as_file = int(os.path.exists(src) and not os.path.isdir(src))
            steps.append(Step("mount", what, s1=src, s2=m.destination, flags=o.flags | MS_BIND, n1=as_file,
                              n2=o.attr_set, n3=o.attr_clr, fd=opts.idmap_trees.get(i, -1)))
        else:
            # proc and sysfs go on the very path named, never through a symlink (as runc insists).
            exact = 2 if m.type in ("proc", "sysfs") else 0
            steps.append(Step("mount", what, s1=m.source or m.type, s2=m.destination, s3=m.type, s4=data,
                              flags=o.flags, n2=o.attr_set, n3=o.attr_clr, n4=exact))
        for p in o.propagation:
            steps.append(Step("mount", what, s2=m.destination, flags2=p))
    steps += _device_steps(cfg)
    if any(m.destination == "/dev/pts" for m in cfg.mounts):
        steps.append(Step("symlink", "/dev/ptmx", s1="pts/ptmx", s2="/dev/ptmx", n1=1))
    return steps


def _device_steps(cfg: Config) -> list[Step]:
    steps = []
    userns = cfg.namespace("user") is not None
    configured = {d.path for d in cfg.devices}
    devices = [(p, "c", major, minor, 0o666, 0, 0) for p, major, minor in DEFAULT_DEVICES if p not in configured]
    devices += [(d.path, d.type, d.major, d.minor, 0o666 if d.file_mode is None else d.file_mode,
                 d.uid or 0, d.gid or 0) for d in cfg.devices]
    for i, (path, kind, major, minor, mode, uid, gid) in enumerate(devices):
        what = f"linux.devices ({path})"
        if userns:
            # mknod is refused in a user namespace: bind the host's node instead, as runc does.
            steps.append(Step("mount", what, s1=path, s2=path, flags=MS_BIND, n1=1))
        else:
            steps.append(Step("mknod", what, s2=path, n1=DEVICE_TYPES[kind] | (mode & 0o7777),
                              n2=os.makedev(major, minor) if kind != "p" else 0, n3=uid, n4=gid))
    for target, link in DEV_SYMLINKS:
        steps.append(Step("symlink", link, s1=target, s2=link))
    return steps


def _hook_step(kind: str, i: int, h: Hook, state: int) -> Step:
    return Step("hook", f"hooks.{kind}[{i}] ({h.path})", s1=h.path, argv=h.args or [h.path], envp=h.env,
                n1=h.timeout or 0, n2=state)


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _process_steps(p: Process, opts: Options) -> list[Step]:
    # Mark every fd past the kept ones close-on-exec first: a seccomp filter loaded below may forbid
    # close_range (Docker's default profile does).
    steps = [Step("close_from", "close fds", n1=3 + opts.keep_fds)]
    if opts.console_fd >= 0:
        rows, cols = p.console_size or (0, 0)
        steps.append(Step("console", "process.terminal", fd=opts.console_fd, n1=rows, n2=cols))
    for r in p.rlimits:
        steps.append(Step("rlimit", f"process.rlimits ({r.type})", n1=RLIMITS[r.type], n2=r.soft, n3=r.hard))
    if p.capabilities is not None:
        steps.append(Step("drop_bounding", "process.capabilities.bounding",
                          n1=caps.mask(p.capabilities["bounding"])))
    for what, attr, value in lsm.exec_labels(p.apparmor_profile, p.selinux_label):
        steps.append(Step("write_file", what, s1=attr, s2=value))
    if opts.seccomp and not p.no_new_privileges:
        # Without no_new_privs only CAP_SYS_ADMIN may load a filter: load it while we still have it.
        steps.append(_seccomp_step(opts.seccomp))
    steps.append(Step("user", "process.user", n1=p.user.uid, n2=p.user.gid, n3=1, nums=p.user.additional_gids))
    if p.capabilities is not None:
        c = p.capabilities
        steps.append(Step("caps", "process.capabilities", nums=[caps.mask(c["effective"]), caps.mask(c["permitted"]),
                                                               caps.mask(c["inheritable"]), caps.mask(c["ambient"])]))
    if p.no_new_privileges:
        steps.append(Step("no_new_privs", "process.noNewPrivileges"))
    steps.append(Step("umask", "process.user.umask", n1=0o022 if p.user.umask is None else p.user.umask))
    steps.append(Step("chdir", f"process.cwd ({p.cwd})", s1=p.cwd))
    return steps


def _seccomp_step(seccomp: tuple[list[int], int]) -> Step:
    return Step("seccomp", "linux.seccomp", nums=seccomp[0], n1=seccomp[1])


def _notify(opts: Options) -> bool:
    """A filter with SCMP_ACT_NOTIFY hands its fd to the runtime, which must still be there to pass it on."""
    if not opts.seccomp:
        return False
    from .linux.seccomp import FLAG_NEW_LISTENER  # only with a filter: the module costs a plain run an import

    return bool(opts.seccomp[1] & FLAG_NEW_LISTENER)


def _late_seccomp(p: Process, opts: Options, before_ready: bool) -> list[Step]:
    """With no_new_privs the filter goes last before execve, so none of our own steps runs under it; a notify
    filter goes last before READY instead, while the runtime still listens (as runc does it)."""
    if not (opts.seccomp and p.no_new_privileges) or before_ready != _notify(opts):
        return []
    return [_seccomp_step(opts.seccomp)]


def environment(p: Process, opts: Options) -> list[str]:
    env = list(p.env) + opts.extra_env
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + _home(opts.rootfs, p.user.uid))
    return env


def _home(rootfs: str, uid: int) -> str:
    """HOME from the image's /etc/passwd, as runc does when the config sets none."""
    try:
        with open(os.path.join(rootfs, "etc/passwd")) as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 5 and parts[2] == str(uid):
                    return parts[5]
    except OSError:
        pass
    return "/"


def build(cfg: Config, opts: Options, cgroup: Cgroup) -> list[Step]:
    """The whole plan of `create`: namespaces, rootfs, process, then wait for `start` and execve."""
    # root.path and the mounts are set up in whatever mount namespace the container ends up in: a new one,
    # one joined by path, or (no "mount" entry: inherit the runtime's) the host's, where `delete` takes them
    # down again.
    host_ns = cfg.namespace("mount") is None
    steps = _namespace_steps(cfg.namespaces, cfg.time_offsets, opts, cgroup)
    steps += _mount_steps(cfg, opts, cgroup, host_ns)
    if cfg.process and cfg.process.oom_score_adj is not None:
        steps.append(Step("write_file", "process.oomScoreAdj", s1="/proc/self/oom_score_adj",
                          s2=str(cfg.process.oom_score_adj)))
    steps.append(Step("sync", "prestart and createRuntime hooks", n1=MSG_MOUNTED, n2=1))
    for i, h in enumerate(cfg.hooks.get("createContainer", [])):
        steps.append(_hook_step("createContainer", i, h, 0))
    if host_ns:
        steps.append(Step("pivot", "chroot", n1=2))  # plain chroot: nothing may be moved onto the host's "/"
    else:
        steps.append(Step("pivot", "pivot_root" if not opts.no_pivot else "chroot", n1=int(opts.no_pivot)))
    for key, value in cfg.sysctl.items():
        steps.append(Step("write_file", f"linux.sysctl ({key})", s1=_sysctl_path(key), s2=value))
    for i, path in enumerate(cfg.masked_paths):
        steps.append(Step("mask", f"linux.maskedPaths[{i}] ({path})", s1=path))
    for i, path in enumerate(cfg.readonly_paths):
        steps.append(Step("readonly", f"linux.readonlyPaths[{i}] ({path})", s1=path))
    if cfg.root_readonly:
        steps.append(Step("readonly", "root.readonly", s1="/", n1=3))
    if cfg.rootfs_propagation and not host_ns:
        # On the new root, once our own mounts are made ("runbindable" would refuse the masks' binds).
        steps.append(Step("set_root_propagation", "linux.rootfsPropagation",
                          flags=PROPAGATION[cfg.rootfs_propagation]))
    if opts.keyring:
        steps.append(Step("keyring", "session keyring", s1=opts.keyring))
    if cfg.hostname is not None:
        steps.append(Step("hostname", "hostname", s1=cfg.hostname))
    if cfg.domainname is not None:
        steps.append(Step("domainname", "domainname", s1=cfg.domainname))
    if cfg.personality:
        domain = {"LINUX": 0x0000, "LINUX32": 0x0008}[cfg.personality["domain"]]
        steps.append(Step("personality", "linux.personality", n1=domain))
    if cfg.process is None:
        # Nothing to run: park until start (which refuses) or delete, as the spec allows.
        return steps + [Step("close_from", "close fds", n1=3), Step("pdeathsig", "outlive create", n1=0),
                        Step("sync", "ready", n1=MSG_READY), Step("wait_fifo", "wait", fd=opts.fifo_fd)]
    steps += _process_steps(cfg.process, opts)
    env = environment(cfg.process, opts)
    args = cfg.process.args
    steps += [
        Step("find_exec", "process.args", s1=args[0], envp=env),
        # The death signal goes before READY: once told, the parent may exit at once.
        Step("pdeathsig", "outlive create", n1=0),
        *_late_seccomp(cfg.process, opts, before_ready=True),
        Step("sync", "ready", n1=MSG_READY, n2=0),
        Step("wait_fifo", "wait for start", fd=opts.fifo_fd),
    ]
    for i, h in enumerate(cfg.hooks.get("startContainer", [])):
        steps.append(_hook_step("startContainer", i, h, 1))
    steps += _late_seccomp(cfg.process, opts, before_ready=False)
    steps.append(Step("exec", "process.args", argv=args, envp=env))
    return steps


def build_exec(namespaces: list[Namespace], process: Process, opts: Options, cgroup: Cgroup) -> list[Step]:
    """The plan of `exec`: join the container's cgroups and every namespace (user first), then the process
    setup."""
    steps = _namespace_steps(namespaces, {}, opts, cgroup)
    if not any(ns.type == "mount" for ns in namespaces):
        # The container lives in the host's mount namespace: its root is a chroot, so is the new process's.
        steps += [Step("set_root", "root.path", s1=opts.rootfs), Step("pivot", "chroot", n1=2)]
    if process.oom_score_adj is not None:
        steps.append(Step("write_file", "process.oomScoreAdj", s1="/proc/self/oom_score_adj",
                          s2=str(process.oom_score_adj)))
    steps += _process_steps(process, opts)
    env = environment(process, opts)
    return steps + [
        Step("find_exec", "process.args", s1=process.args[0], envp=env),
        Step("pdeathsig", "outlive exec", n1=0),
        *_late_seccomp(process, opts, before_ready=True),
        Step("sync", "ready", n1=MSG_READY, n2=0),
        *_late_seccomp(process, opts, before_ready=False),
        Step("exec", "process.args", argv=process.args, envp=env),
    ]
