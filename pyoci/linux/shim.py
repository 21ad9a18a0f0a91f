"""The only door to the C executor: plan steps in, a child process and its messages out."""
from __future__ import annotations

import errno
import os
import struct

from .._shim import ffi, lib
from ..errors import PyociError
from ..record import field, record

OP = {name[len("PYOCI_OP_"):].lower(): getattr(lib, name) for name in dir(lib) if name.startswith("PYOCI_OP_")}
MSG_USERNS, MSG_PID = lib.PYOCI_MSG_USERNS, lib.PYOCI_MSG_PID
MSG_MOUNTED, MSG_READY, MSG_ERROR = lib.PYOCI_MSG_MOUNTED, lib.PYOCI_MSG_READY, lib.PYOCI_MSG_ERROR
MSG_SECCOMP_FD = lib.PYOCI_MSG_SECCOMP_FD
MESSAGE = struct.Struct("iiii240s")


@record
class Step:
    """One plan step; `what` names the config item it came from, for the error a failure turns into."""
    op: str
    what: str
    fd: int = -1
    flags: int = 0
    flags2: int = 0
    n1: int = 0
    n2: int = 0
    n3: int = 0
    n4: int = 0
    s1: str | None = None
    s2: str | None = None
    s3: str | None = None
    s4: str | None = None
    argv: list[str] | None = None
    envp: list[str] | None = None
    nums: list[int] = field(default_factory=list)


@record
class Message:
    type: int
    step: int
    err: int
    pid: int
    detail: str


def _i64(n: int) -> int:
    """A uint64 from the config (RLIM_INFINITY, say) travels in a C long long as its two's complement."""
    return n - (1 << 64) if n >= 1 << 63 else n


def encode(steps: list[Step]) -> tuple[object, list[object]]:
    """The plan as the C array, and the buffers it points into (keep them alive while C uses it).

    Strings were checked for NUL bytes and lone surrogates when the config was validated; a number that
    fits no 64-bit field is an error naming the step's config item."""
    keep: list[object] = []

    def cstr(s: str | None):
        if s is None:
            return ffi.NULL
        buf = ffi.new("char[]", os.fsencode(s))
        keep.append(buf)
        return buf

    def cvec(items: list[str] | None):
        if items is None:
            return ffi.NULL
        vec = ffi.new("char *[]", [cstr(x) for x in items] + [ffi.NULL])
        keep.append(vec)
        return vec

    arr = ffi.new("struct pyoci_step[]", len(steps))
    for c, s in zip(arr, steps):
        try:
            c.op = OP[s.op]
            c.fd = s.fd
            c.flags, c.flags2 = s.flags, s.flags2
            c.n1, c.n2, c.n3, c.n4 = _i64(s.n1), _i64(s.n2), _i64(s.n3), _i64(s.n4)
            if s.nums:
                nums = ffi.new("unsigned long long[]", s.nums)
                keep.append(nums)
                c.list, c.nlist = nums, len(s.nums)
        except OverflowError:
            raise PyociError(f"{s.what}: a number is out of range") from None
        c.s1, c.s2, c.s3, c.s4 = cstr(s.s1), cstr(s.s2), cstr(s.s3), cstr(s.s4)
        c.argv, c.envp = cvec(s.argv), cvec(s.envp)
    return arr, keep


def spawn(steps: list[Step], sync_fd: int) -> int:
    """Starts a child that runs the steps in order and never returns to Python; it is born in the plan's v2
    cgroup where the kernel allows (see the join_cgroup step)."""
    arr, keep = encode(steps)
    v2 = next((s.s1 for s in steps if s.op == "join_cgroup" and s.n1), None)
    pid = lib.pyoci_spawn(arr, len(steps), sync_fd, ffi.NULL if v2 is None else os.fsencode(v2))
    if pid < 0:
        raise PyociError("clone", -pid)
    return pid


def decode(data: bytes) -> Message:
    t, step, err, pid, detail = MESSAGE.unpack(data[: MESSAGE.size])
    return Message(t, step, err, pid, detail.split(b"\0", 1)[0].decode(errors="replace"))


def umount_lazy(path: str) -> None:
    err = lib.pyoci_umount_lazy(os.fsencode(path))
    if err < 0:
        raise PyociError(f"unmount {path}", -err)


def mount(source: str, target: str, fstype: str, data: str, flags: int = 0) -> None:
    err = lib.pyoci_mount(os.fsencode(source), os.fsencode(target), os.fsencode(fstype), flags, os.fsencode(data))
    if err < 0:
        raise PyociError(f"mount {fstype} on {target}", -err)


def supports_dtype(directory: str) -> bool:
    """Whether readdir fills d_type there: overlay needs it to tell whiteouts from files."""
    ret = lib.pyoci_supports_dtype(os.fsencode(directory))
    if ret < 0:
        raise PyociError(f"read directory {directory}", -ret)
    return ret == 1


def idmapped_tree(src: str, userns_fd: int, tree_rec: bool, idmap_rec: bool, what: str) -> int:
    """A detached, idmapped copy of src's mount for the executor to move into place (its fd)."""
    stage = ffi.new("int *")
    fd = lib.pyoci_idmapped_tree(os.fsencode(src), userns_fd, int(tree_rec), int(idmap_rec), stage)
    if fd >= 0:
        return fd
    if stage[0] == 1 and -fd == errno.EINVAL:
        raise PyociError(f"{what}: idmapped mount of {src}: its filesystem does not support idmapped mounts "
                         "(mount_setattr)", -fd)
    raise PyociError(f"{what}: idmapped mount of {src}: {('open_tree', 'mount_setattr')[stage[0]]}", -fd)


def attach_device_filter(program: bytes, cgroup_dir: str) -> None:
    """Loads a cgroup v2 device program and attaches it to cgroup_dir (alongside any others)."""
    log = ffi.new("char[]", 4096)
    err = lib.pyoci_device_filter_attach(program, len(program), os.fsencode(cgroup_dir), log, len(log))
    if err < 0:
        words = ffi.string(log).decode(errors="replace").strip().splitlines()
        raise PyociError(f"cgroup {cgroup_dir}: device filter" + (f" ({words[-1]})" if words else ""), -err)
