"""linux.seccomp → a BPF program, compiled by libseccomp in the runtime; the executor only loads it."""
from __future__ import annotations

import struct

from ..errors import ENOSYS, EPERM, ConfigError

ACT_ERRNO, ACT_TRACE, ACT_LOG, ACT_ALLOW = 0x00050000, 0x7FF00000, 0x7FFC0000, 0x7FFF0000
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": ACT_ERRNO, "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_LOG": ACT_LOG, "SCMP_ACT_ALLOW": ACT_ALLOW, "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
         "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
FLAG_NEW_LISTENER = 8  # seccomp(2) returns the notify fd; set by pyoci whenever a rule says SCMP_ACT_NOTIFY
# The ENOSYS stub's pieces: classic BPF opcodes (<linux/filter.h>), struct seccomp_data's offsets, the
# AUDIT_ARCH_ values it treats apart (x32 calls are x86_64's with bit 30 set; s390 multiplexes the numbers it
# does not know through setup(2), number 0).
LD_W_ABS, JA, JEQ, JGT, JSET, RET = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
NR_AT, ARCH_AT = 0, 4
X32_BIT = 0x40000000
AUDIT_X86_64, AUDIT_S390, AUDIT_S390X = 0xC000003E, 0x16, 0x80000016
# The executor sends the notify fd to the runtime with sendmsg right after loading the filter: were that
# call itself notified, nobody could ever answer it (runc's rule for its write, for the same reason).
NOT_NOTIFIABLE = ("sendmsg",)


def _action(name: str, errno_ret: int | None, where: str) -> int:
    value = ACTIONS[name]
    if value in (ACT_ERRNO, ACT_TRACE):
        value |= (EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def uses_notify(seccomp: dict) -> bool:
    return any(sc["action"] == "SCMP_ACT_NOTIFY" for sc in seccomp.get("syscalls", []))


def _check_notify(seccomp: dict) -> None:
    """SCMP_ACT_NOTIFY needs an agent to answer (listenerPath) and must leave the runtime able to reach it."""
    if seccomp["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise ConfigError("SCMP_ACT_NOTIFY cannot be the default action: the runtime's own last syscalls would "
                          "wait on an agent that has no fd yet", path="linux.seccomp.defaultAction")
    for i, sc in enumerate(seccomp.get("syscalls", [])):
        if sc["action"] != "SCMP_ACT_NOTIFY":
            continue
        where = f"linux.seccomp.syscalls[{i}].action"
        if not seccomp.get("listenerPath"):
            raise ConfigError("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the agent's socket)", path=where)
        for name in sc["names"]:
            if name in NOT_NOTIFIABLE:
                raise ConfigError(f"SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it to hand the "
                                  "notify fd on", path=where)


def send_to_listener(seccomp: dict, notify_fd: int, pid: int, state: dict) -> None:
    """The runtime-spec's container process state and the notify fd, in one message on a new connection to
    listenerPath (an agent such as a seccomp-notify handler)."""
    from .. import OCI_VERSION, jsonio
    from ..errors import PyociError
    from . import unixsock

    path = seccomp["listenerPath"]
    message = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid, "state": state}
    if "listenerMetadata" in seccomp:
        message["metadata"] = seccomp["listenerMetadata"]
    try:
        sock = unixsock.connect(path)
        try:
            unixsock.send_fds(sock, [jsonio.dumps(message).encode()], [notify_fd])
        finally:
            sock.close()
    except OSError as exc:
        raise PyociError(f"linux.seccomp.listenerPath ({path}): send the notify fd", exc.errno) from None


def _newest(seccomp: dict) -> dict[int, dict[bool, int]]:
    """AUDIT_ARCH_ value → {is x32: the largest syscall number the profile names there}, for the native
    architecture and every one the profile lists (the names each rule gives, whatever its action)."""
    from .shim import last_syscall

    names = sorted({name for sc in seccomp.get("syscalls", []) for name in sc["names"]})
    newest: dict[int, dict[bool, int]] = {}
    for arch in [None, *(a.removeprefix("SCMP_ARCH_").lower() for a in seccomp.get("architectures", []))]:
        last, audit = last_syscall(arch, names)
        if last:
            newest.setdefault(audit, {})[arch == "x32"] = last
    return newest


def _assemble(code: list[tuple]) -> list[int]:
    """Instructions (code, jt, jf, k), where jt/jf (conditional jumps) or k (ja) may name a label, and
    ("label", name) entries; "filter" is the first instruction after these (libseccomp's program)."""
    at, pos = {}, 0
    for entry in code:
        if entry[0] == "label":
            at[entry[1]] = pos
        else:
            pos += 1
    at["filter"] = pos
    out: list[int] = []
    for entry in code:
        if entry[0] == "label":
            continue
        op, jt, jf, k = (at[v] - len(out) - 1 if isinstance(v, str) else v for v in entry)
        if jt > 255 or jf > 255:  # a conditional jump has 8 bits: a few dozen architectures would need more
            raise ConfigError("too many architectures for the ENOSYS stub", path="linux.seccomp.architectures")
        out.append(struct.unpack("=Q", struct.pack("=HBBI", op, jt, jf, k))[0])
    return out


def enosys_stub(seccomp: dict, default: int) -> list[int]:
    """What runc puts before the filter (its -ENOSYS stub): a syscall numbered above every one the profile
    names on its architecture is newer than the profile, and gets ENOSYS, not the default action's EPERM,
    so that the C library falls back to the older call (clone3 to clone, faccessat2, openat2...). Nothing
    for a default that allows, logs or traces (nothing to fall back from), or that says ENOSYS already."""
    if default & 0xFFFF0000 in (ACT_ALLOW, ACT_LOG, ACT_TRACE) or default == ACT_ERRNO | ENOSYS:
        return []
    newest = _newest(seccomp)
    if not newest:
        return []
    code: list[tuple] = [(LD_W_ABS, 0, 0, ARCH_AT)]
    code += [(JEQ, f"arch{i}", 0, audit) for i, audit in enumerate(newest)]
    code.append((JA, 0, 0, "filter"))  # an architecture the profile leaves alone: the filter decides
    for i, (audit, last) in enumerate(newest.items()):
        code += [("label", f"arch{i}"), (LD_W_ABS, 0, 0, NR_AT)]
        if audit in (AUDIT_S390, AUDIT_S390X):
            code.append((JEQ, "enosys", 0, 0))
        if audit == AUDIT_X86_64:  # each ABI against its own newest number; none named: the filter decides
            code.append((JSET, f"x32-{i}", 0, X32_BIT))
            code += [(JGT, "enosys", 0, last[False])] if False in last else []
            code += [(JA, 0, 0, "filter"), ("label", f"x32-{i}")]
            code += [(JGT, "enosys", 0, last[True])] if True in last else []
        else:
            code.append((JGT, "enosys", 0, last[False]))
        code.append((JA, 0, 0, "filter"))
    code += [("label", "enosys"), (RET, 0, 0, ACT_ERRNO | ENOSYS)]
    return _assemble(code)


def compile_filter(seccomp: dict) -> tuple[list[int], int]:
    """The program (one sock_filter per 64-bit entry) and the flags for seccomp(2)."""
    from .shim import compile_seccomp

    _check_notify(seccomp)
    default = _action(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    arches = [a.removeprefix("SCMP_ARCH_").lower() for a in seccomp.get("architectures", [])]
    flags = 0
    for name in seccomp.get("flags", []):
        flags |= FLAGS[name]
    if uses_notify(seccomp):
        flags |= FLAG_NEW_LISTENER
    rules = []
    where = []
    for i, sc in enumerate(seccomp.get("syscalls", [])):
        action = _action(sc["action"], sc.get("errnoRet"), f"linux.seccomp.syscalls[{i}].action")
        if action == default:
            continue  # libseccomp refuses a rule that says what the default says; runc skips it too
        args = sc.get("args", [])
        # One rule ANDs its comparisons, but only one per argument: several on one argument become
        # separate rules (an OR), as runc does.
        groups = [args] if len({a["index"] for a in args}) == len(args) else [[a] for a in args]
        for name in sc["names"]:
            for group in groups:
                rules.append((name, action, group))
                where.append(f"linux.seccomp.syscalls[{i}] ({name})")
    data = compile_seccomp(default, arches, rules, OPS, where)
    return enosys_stub(seccomp, default) + list(struct.unpack(f"={len(data) // 8}Q", data)), flags
