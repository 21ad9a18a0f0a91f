"""The executor's ops as typed records: one class per op of csrc/shim.h, with the same field names as that
op's C struct, so that pyoci/linux/shim.py encodes any of them the same way (field by field, by type).

Plain Python: the planner and its tests use these without the compiled extension. Every step carries
`what`, the config item it came from, which is what an executor error names.
"""
from __future__ import annotations

from ._protocol import MSG_KINDS
from .record import Record, field

# enum pyoci_msg_type: the header's numbers (pyoci._protocol has them, read from it at build time)
USERNS, MOUNTED, READY = MSG_KINDS["USERNS"], MSG_KINDS["MOUNTED"], MSG_KINDS["READY"]
# enum pyoci_where
IN_ROOT, IN_ROOT_EXACT, HOST_PATH = 0, 1, 2
# enum pyoci_pivot
PIVOT_ROOT, MOVE_CHROOT, CHROOT = 0, 1, 2
# the states the executor's hooks get on their stdin (struct pyoci_hook's state)
CREATED_STATE, RUNNING_STATE = 0, 1


class Step(Record):
    what: str


class Sync(Step):
    """Tell the runtime `message`; with wait, go on only when it answers."""
    message: int
    wait: bool = False


class Setns(Step):
    fd: int
    nstype: int


class Unshare(Step):
    flags: int


class Fork(Step):
    """The container's init: a child in the new pid (and time) namespaces; the forking process exits."""
    death_signal: int


class WriteFile(Step):
    path: str
    data: str


class Setsid(Step):
    pass


class Mount(Step):
    target: str
    source: str | None = None
    fstype: str | None = None
    data: str | None = None
    flags: int = 0
    propagation: int = 0
    attr_set: int = 0
    attr_clr: int = 0
    where: int = IN_ROOT
    as_file: bool = False
    tree_fd: int = -1


class SetRoot(Step):
    path: str


class Mknod(Step):
    path: str
    mode: int
    dev: int
    uid: int = 0
    gid: int = 0


class Symlink(Step):
    target: str
    path: str
    replace: bool = False


class Pivot(Step):
    how: int


class Mask(Step):
    path: str


class Readonly(Step):
    path: str
    must_exist: bool = False
    in_place: bool = False


class Hostname(Step):
    name: str


class Domainname(Step):
    name: str


class Hook(Step):
    path: str
    argv: list[str]
    envp: list[str]
    timeout: int
    state: int


class Console(Step):
    socket_fd: int
    rows: int = 0
    cols: int = 0


class Rlimit(Step):
    resource: int
    soft: int
    hard: int


class Personality(Step):
    domain: int


class DropBounding(Step):
    keep: int


class User(Step):
    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)
    setgroups: bool = True


class Caps(Step):
    effective: int
    permitted: int
    inheritable: int
    ambient: int


class NoNewPrivs(Step):
    pass


class Chdir(Step):
    path: str
    attempt: int = 0


class Umask(Step):
    mask: int


class CloseFrom(Step):
    first: int


class FindExec(Step):
    name: str
    search_path: str


class WaitStart(Step):
    listen_fd: int


class Exec(Step):
    argv: list[str]
    envp: list[str]


class SetRootPropagation(Step):
    flags: int


class Pdeathsig(Step):
    signal: int


class Keyring(Step):
    name: str


class Seccomp(Step):
    program: list[int]
    flags: int


class Dumpable(Step):
    value: int


class JoinCgroup(Step):
    path: str
    v2: bool


class CloseFds(Step):
    keep: list[int]


class Scheduler(Step):
    policy: int
    flags: int = 0
    nice: int = 0
    priority: int = 0
    runtime: int = 0
    deadline: int = 0
    period: int = 0


class IoPriority(Step):
    value: int


class CpuAffinity(Step):
    mask: list[int] = field(default_factory=list)  # empty: every CPU


class MemoryPolicy(Step):
    mode: int
    nodes: list[int] = field(default_factory=list)


class ChownStdio(Step):
    uid: int


FD_FIELDS = ("fd", "socket_fd", "listen_fd", "tree_fd")


def fds_used(steps: list[Step]) -> set[int]:
    """The fds the steps name (the executor keeps them open)."""
    return {fd for s in steps for name in FD_FIELDS if (fd := getattr(s, name, -1)) >= 0}


def birth_cgroup(steps: list[Step]) -> str | None:
    """The v2 cgroup the executor may be born in (clone3 CLONE_INTO_CGROUP): the plan's, unless a step before
    the join must run outside it (an exec's initial CPU affinity, set before it joins as the spec says)."""
    for s in steps:
        if isinstance(s, CpuAffinity):
            return None
        if isinstance(s, JoinCgroup) and s.v2:
            return s.path
    return None


def op_name(cls: type[Step]) -> str:
    """The op's name in csrc/shim.h (enum pyoci_op without PYOCI_OP_, lowercase: its union member)."""
    name = cls.__name__
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
