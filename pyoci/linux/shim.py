"""The only door to pyoci's C side (csrc/shim.h): plans in, a child process out, and the host-side helpers.
Every number of the interface comes from the header, through the compiled extension or, for the messages the
executor sends back (which pyoci/sync.py reads), through pyoci._protocol, generated from it at build time;
nothing is re-typed here.
"""
from __future__ import annotations

import _struct
import posix

from .._protocol import STEP, STEPS, WHAT
from .._shim import ffi, lib
from ..errors import EINVAL, KernelError, PyociError
from .files import read_regular, read_to_end
from .fs import fsencode
from .. import steps as st


_layouts: dict[type, tuple[int, object, tuple[tuple[str, str, int], ...]]] = {}


def _layout(cls: type) -> tuple[int, object, tuple[tuple[str, str, int], ...]]:
    """A step class's op number, the Struct that lays a whole step of it out, and its fields (name, kind,
    offset in the step): pyoci._protocol's STEPS, read from the header at build time."""
    found = _layouts.get(cls)
    if found is None:
        number, fmt, fields = STEPS[st.op_name(cls)]
        found = _layouts[cls] = (number, _struct.Struct(fmt), fields)
    return found


def encode(steps: list[st.Step]) -> tuple[bytes, list[int]]:
    """The plan as one block for the executor: the C step array first, then everything the steps point to, each
    at an 8-byte boundary; and where its pointers are (offsets in the block). A pointer holds the offset of what
    it points to: the executor adds the address where the block lands in its memory.

    Laid out with the struct module from the header's layouts (pyoci._protocol): filling cffi's structs field
    by field cost a create ~1 ms. Strings were checked for NUL bytes and lone surrogates when the config was
    validated; a number that fits no field is an error naming the step's config item."""
    block = bytearray(STEP * len(steps))
    relocs: list[int] = []

    def text(s: str) -> int:
        at = len(block)
        data = fsencode(s)
        block.extend(data)
        block.extend(bytes(8 - len(data) % 8))  # its NUL, and up to the next boundary
        return at

    def vector(items: list[str]) -> int:
        pointers = [text(x) for x in items]
        at = len(block)
        block.extend(_struct.pack(f"={len(items) + 1}q", *pointers, 0))
        relocs.extend(range(at, at + 8 * len(items), 8))
        return at

    for i, step in enumerate(steps):
        number, layout, fields = _layout(type(step))
        at = i * STEP
        values = [number, text(step.what)]
        relocs.append(at + WHAT)
        try:
            for name, kind, offset in fields:
                v = getattr(step, name)
                if kind == "n":  # a uint64 of the config (RLIM_INFINITY) travels as its two's complement
                    values.append(v - (1 << 64) if v >= 1 << 63 else v)
                elif kind == "u":
                    values += (len(block), len(v)) if v else (0, 0)
                    if v:
                        block.extend(_struct.pack(f"={len(v)}Q", *v))
                        relocs.append(at + offset)
                elif v is None:
                    values.append(0)
                else:
                    values.append(text(v) if kind == "s" else vector(v))
                    relocs.append(at + offset)
            layout.pack_into(block, at, *values)  # type: ignore[attr-defined]
        except _struct.error:
            raise PyociError(f"{step.what}: a number is out of range") from None
    return bytes(block), relocs


def spawn(steps: list[st.Step], sync_fd: int) -> int:
    """Starts a child that runs the steps in order and never returns to Python; it is born in the plan's v2
    cgroup where the kernel allows (see the join_cgroup step)."""
    block, relocs = encode(steps)
    v2 = st.birth_cgroup(steps)
    inherit = sorted(st.fds_used(steps).union(*(s.keep for s in steps if isinstance(s, st.CloseFds))))
    pid = lib.pyoci_spawn(block, len(block), len(steps), ffi.new("unsigned long long[]", relocs), len(relocs),
                          ffi.new("int[]", inherit), len(inherit), sync_fd,
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
    if stage[0] == 1 and -fd == EINVAL:
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
    strings = [ffi.new("char[]", fsencode(x)) for x in hook.argv + hook.envp]  # what the vectors point to
    argv = ffi.new("char *[]", [*strings[:len(hook.argv)], ffi.NULL])
    envp = ffi.new("char *[]", [*strings[len(hook.argv):], ffi.NULL])
    detail = ffi.new("char[]", 256)
    r = lib.pyoci_run_hook(fsencode(hook.path), argv, envp, stdin_fd, hook.timeout, fsencode(cwd), detail,
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
