"""The only door to pyoci's C side (csrc/shim.h): plans in, a child process out, and the host-side helpers.
Every number of the interface comes from the header, through the compiled extension or, for the messages the
executor sends back (which pyoci/sync.py reads), through pyoci._protocol, generated from it at build time;
nothing is re-typed here.
"""
from __future__ import annotations

import errno
import posix

from .._protocol import MSG_KINDS
from .._shim import ffi, lib
from ..errors import KernelError, PyociError
from ..record import field_names
from .files import read_regular, read_to_end
from .fs import fsencode
from .. import steps as st


def _i64(n: int) -> int:
    """A uint64 from the config (RLIM_INFINITY, say) travels in a C long long as its two's complement."""
    return n - (1 << 64) if n >= 1 << 63 else n


def _aligned(n: int) -> int:
    return (n + 7) & ~7


# Sizes and offsets of the plan's layout (the step array is the block's first bytes).
STEP = ffi.sizeof("struct pyoci_step")
POINTER = ffi.sizeof("char *")
WHAT = ffi.offsetof("struct pyoci_step", "what")
U64S_V = ffi.offsetof("struct pyoci_u64s", "v")
STR_KINDS = ("str", "str | None")
POINTER_KINDS = (*STR_KINDS, "list[str]")


class _Encoder:
    """Fills struct pyoci_step's from records, field by field by the field's declared type.

    With a layout (encode's), everything lands in one block of memory: the step array first, then each
    string, vector and number array the steps point to, and every pointer's offset in the block is noted,
    so that the executor, a program of its own, can move the block into its memory. Without one (a hook the
    runtime runs itself), each buffer is a cffi allocation of its own, kept alive in `keep`."""

    def __init__(self, size: int = 0) -> None:
        self.keep: list[object] = []  # the buffers the C side points into
        self._fields: dict[type, list[tuple[str, str]]] = {}
        self._layouts: dict[type, tuple[int, str, list[tuple[str, str, int]]]] = {}
        self.block = ffi.new("char[]", size) if size else None
        self.used = 0
        self.relocs: list[int] = []  # the block's pointers, as offsets in it

    def fields(self, cls: type) -> list[tuple[str, str]]:
        if cls not in self._fields:
            annotations: dict[str, str] = {}
            for klass in reversed(cls.__mro__):
                annotations.update(klass.__dict__.get("__annotations__", {}))
            self._fields[cls] = [(name, annotations[name]) for name in field_names(cls)
                                 if name != "what"]
        return self._fields[cls]

    def layout(self, step: st.Step) -> tuple[int, str, list[tuple[str, str, int]]]:
        """The op's number, its union member, and each field with its kind and its offset in struct
        pyoci_step (where the field is a pointer, the block's relocation is that plus the step's own)."""
        cls = type(step)
        if cls not in self._layouts:
            name = st.op_name(step)
            self._layouts[cls] = (getattr(lib, f"PYOCI_OP_{name.upper()}"), name,
                                  [(field, kind, ffi.offsetof("struct pyoci_step", "u", name, field))
                                   for field, kind in self.fields(cls)])
        return self._layouts[cls]

    def alloc(self, ctype: str, init: object, size: int):
        """A new ctype array (init: its items, or bytes), in the block where there is one."""
        if self.block is None:
            buf = ffi.new(ctype, init)
            self.keep.append(buf)
            return buf
        if self.used + size > len(self.block):  # the sizing pass and this one disagree: a bug, caught before a write
            raise RuntimeError(f"plan block overflow: {self.used} + {size} > {len(self.block)} bytes")
        buf = ffi.cast(ctype.replace("[]", "*"), self.block + self.used)
        if isinstance(init, bytes):
            ffi.memmove(buf, init, len(init))
        else:
            for i, item in enumerate(init):
                buf[i] = item
        self.used += _aligned(size)
        return buf

    def cstr(self, s: str | None):
        if s is None:
            return ffi.NULL
        data = fsencode(s)
        return self.alloc("char[]", data + b"\0", len(data) + 1)

    def vector(self, items: list[str]):
        strings = [self.cstr(x) for x in items]
        at = self.used
        vec = self.alloc("char *[]", strings + [ffi.NULL], POINTER * (len(items) + 1))
        if self.block is not None:
            self.relocs += range(at, at + POINTER * len(items), POINTER)
        return vec

    def value(self, kind: str, v: object):
        if kind in STR_KINDS:
            return self.cstr(v)
        if kind == "list[str]":
            return self.vector(v)
        if kind == "bool":
            return int(v)
        if kind == "MessageKind":
            return MSG_KINDS[v]
        return _i64(v)

    def encode(self, c, step: st.Step, at: int) -> None:
        """Fills c, the step array's item at offset `at` of the block, from step."""
        op, name, fields = self.layout(step)
        c.op = op
        c.what = self.cstr(step.what)
        self.relocs.append(at + WHAT)
        args = getattr(c.u, name) if fields else None
        for field, kind, offset in fields:
            v = getattr(step, field)
            if kind == "list[int]":
                slot = getattr(args, field)
                slot.v = self.alloc("unsigned long long[]", v, 8 * len(v)) if v else ffi.NULL
                slot.n = len(v)
                if v:
                    self.relocs.append(at + offset + U64S_V)
            else:
                setattr(args, field, self.value(kind, v))
                if kind in POINTER_KINDS and v is not None:
                    self.relocs.append(at + offset)


def _block_size(steps: list[st.Step], enc: _Encoder) -> int:
    """At least the bytes encode's block needs: the step array and everything the steps point to (a string
    counted at 4 bytes a character, UTF-8's most, rather than encoded twice)."""
    def text(s: str) -> int:
        return _aligned(4 * len(s) + 1)

    size = _aligned(STEP * len(steps))
    for step in steps:
        size += text(step.what)
        for field, kind in enc.fields(type(step)):
            v = getattr(step, field)
            if kind in STR_KINDS and v is not None:
                size += text(v)
            elif kind == "list[str]":
                size += _aligned(POINTER * (len(v) + 1)) + sum(text(x) for x in v)
            elif kind == "list[int]":
                size += _aligned(8 * len(v))
    return size


def encode(steps: list[st.Step]) -> _Encoder:
    """The plan as one block for the executor: the C step array first, then what it points to, with the
    offsets of its pointers (encoder.relocs).

    Strings were checked for NUL bytes and lone surrogates when the config was validated; a number that
    fits no 64-bit field is an error naming the step's config item."""
    enc = _Encoder(_block_size(steps, _Encoder()))
    arr = enc.alloc("struct pyoci_step[]", [], STEP * len(steps))
    for i, step in enumerate(steps):
        try:
            enc.encode(arr[i], step, i * STEP)
        except OverflowError:
            raise PyociError(f"{step.what}: a number is out of range") from None
    return enc


def spawn(steps: list[st.Step], sync_fd: int) -> int:
    """Starts a child that runs the steps in order and never returns to Python; it is born in the plan's v2
    cgroup where the kernel allows (see the join_cgroup step)."""
    enc = encode(steps)
    v2 = st.birth_cgroup(steps)
    inherit = sorted(st.fds_used(steps).union(*(s.keep for s in steps if isinstance(s, st.CloseFds))))
    relocs = ffi.new("unsigned long long[]", enc.relocs)
    fds = ffi.new("int[]", inherit)
    pid = lib.pyoci_spawn(enc.block, enc.used, len(steps), relocs, len(enc.relocs), fds, len(inherit), sync_fd,
                          ffi.NULL if v2 is None else fsencode(v2))
    if pid < 0:
        raise KernelError("start the executor", -pid)
    return pid


def umount_lazy(path: str) -> None:
    err = lib.pyoci_umount_lazy(fsencode(path))
    if err < 0:
        raise KernelError(f"unmount {path}", -err)


def replace(tmp: str, path: str) -> None:
    """rename(tmp, path), for a file rewritten while it lives (a container's state): the same atomic swap
    for a reader, without the writes a rename over a file costs on ext4. There (auto_da_alloc) such a
    rename allocates the new file's blocks at once and frees the replaced one's, a discard where the
    filesystem is mounted with it: ~0.1 ms of CPU a save, and again when the file is unlinked. Exchanging
    the names and unlinking the old file leaves the data in the page cache, which is all a state file needs.
    Without a file at path, or on a filesystem without RENAME_EXCHANGE, a plain rename."""
    if lib.pyoci_exchange(fsencode(tmp), fsencode(path)) == 0:
        posix.unlink(tmp)
    else:
        posix.rename(tmp, path)


def mount_from(directory: str, source: str, target: str, fstype: str, data: str, flags: int = 0) -> None:
    """A mount whose relative paths (an overlay's lowerdir) resolve in directory; our cwd stays."""
    fd = posix.open(directory, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    try:
        err = lib.pyoci_mount_from(fd, fsencode(source), fsencode(target), fsencode(fstype), flags,
                                   fsencode(data))
    finally:
        posix.close(fd)
    if err < 0:
        raise KernelError(f"mount {fstype} on {target}", -err)


def supports_dtype(directory: str) -> bool:
    """Whether readdir fills d_type there: overlay needs it to tell whiteouts from files."""
    ret = lib.pyoci_supports_dtype(fsencode(directory))
    if ret < 0:
        raise KernelError(f"read directory {directory}", -ret)
    return ret == 1


def mount_tree(src: str, tree_rec: bool, what: str, userns_fd: int = -1, idmap_rec: bool = False) -> int:
    """A detached copy of src's mount, idmapped through userns_fd if given, for the executor to move into
    place (its fd)."""
    stage = ffi.new("int *")
    fd = lib.pyoci_mount_tree(fsencode(src), userns_fd, int(tree_rec), int(idmap_rec), stage)
    if fd >= 0:
        return fd
    if userns_fd < 0:
        raise KernelError(f"{what}: bind of {src}: open_tree", -fd)
    if stage[0] == 1 and -fd == errno.EINVAL:
        raise KernelError(f"{what}: idmapped mount of {src}: its filesystem does not support idmapped mounts "
                          "(mount_setattr)", -fd)
    raise KernelError(f"{what}: idmapped mount of {src}: {('open_tree', 'mount_setattr')[stage[0]]}", -fd)


def socket_in_netns(netns_fd: int, family: int, kind: int, proto: int):
    """A socket of the network namespace netns_fd (our own threads stay in theirs)."""
    import socket

    fd = lib.pyoci_socket_in_netns(netns_fd, family, kind, proto)
    if fd < 0:
        raise KernelError("socket in the container's network namespace", -fd)
    return socket.socket(family, kind, proto, fileno=fd)


def read_in_root(root: str, path: str, limit: int) -> bytes | None:
    """path as a container rooted at root sees it (nothing followed out of root, no magic link), if it is a
    regular file of at most limit bytes; else None (missing, a FIFO, a device, a directory, too large)."""
    fd = lib.pyoci_open_in_root(fsencode(root), fsencode(path))
    return None if fd < 0 else read_regular(fd, limit)


def attach_device_filter(program: bytes, cgroup_dir: str) -> None:
    """Loads a cgroup v2 device program and attaches it to cgroup_dir (alongside any others)."""
    log = ffi.new("char[]", 4096)
    err = lib.pyoci_device_filter_attach(program, len(program), fsencode(cgroup_dir), log, len(log))
    if err < 0:
        words = ffi.string(log).decode(errors="replace").strip().splitlines()
        raise KernelError(f"cgroup {cgroup_dir}: device filter" + (f" ({words[-1]})" if words else ""), -err)


def run_hook(hook: st.Hook, stdin_fd: int, cwd: str) -> None:
    """Runs a hook on the host, in cwd, with the executor's own runner, so failures read the same on both
    sides."""
    enc = _Encoder()
    detail = ffi.new("char[]", 256)
    r = lib.pyoci_run_hook(fsencode(hook.path), enc.value("list[str]", hook.argv),
                           enc.value("list[str]", hook.envp), stdin_fd, hook.timeout, fsencode(cwd), detail,
                           len(detail))
    if r < 0:
        raise KernelError(hook.what, -r)
    if r > 0:
        raise PyociError(f"{hook.what}: {ffi.string(detail).decode(errors='replace')}")


def last_syscall(arch: str | None, names: list[str]) -> tuple[int, int]:
    """The largest number any of names has on arch (None: the native arch; 0: none of them is a syscall
    there) and the AUDIT_ARCH_ value a filter sees for it."""
    c_names = [ffi.new("char[]", n.encode()) for n in names]
    audit = ffi.new("unsigned int *")
    last = lib.pyoci_seccomp_last_syscall(ffi.NULL if arch is None else arch.encode(),
                                          ffi.new("const char *[]", c_names), len(c_names), audit)
    if last < 0:
        from ..errors import ConfigError

        raise ConfigError(f"libseccomp does not know architecture {arch}", path="linux.seccomp.architectures")
    return last, audit[0]


def compile_seccomp(default: int, arches: list[str], rules: list[tuple[str, int, list[dict]]], ops: dict[str, int],
                    where: list[str]) -> bytes:
    """libseccomp's BPF program for these rules (name, action, argument comparisons). A rule it refuses is
    named by its `where` entry."""
    from ..errors import ConfigError

    c_rules = ffi.new("struct pyoci_scmp_rule[]", max(len(rules), 1))
    keep = []
    for c, (name, action, group) in zip(c_rules, rules):
        cname = ffi.new("char[]", name.encode())
        keep.append(cname)
        c.name, c.action, c.nargs = cname, action, len(group)
        for j, a in enumerate(group):
            c.args[j].index, c.args[j].op = a["index"], ops[a["op"]]
            c.args[j].value, c.args[j].value_two = a["value"], a.get("valueTwo", 0)
    c_arches = [ffi.new("char[]", a.encode()) for a in arches]
    arch_vec = ffi.new("const char *[]", c_arches + [ffi.NULL])
    failed = ffi.new("int *")
    fd = posix.memfd_create("pyoci-seccomp", posix.MFD_CLOEXEC)
    try:
        err = lib.pyoci_seccomp_compile(default, arch_vec, len(arches), c_rules, len(rules), fd, failed)
        if err < 0:
            path = where[failed[0]] if failed[0] >= 0 else "linux.seccomp.architectures"
            raise ConfigError(f"libseccomp refused it: {posix.strerror(-err)}", path=path)
        posix.lseek(fd, 0, 0)  # SEEK_SET
        return read_to_end(fd)
    finally:
        posix.close(fd)
