"""Device rules (linux.resources.devices): lines for v1's devices.allow/deny, and for cgroup v2 the eBPF
BPF_PROG_TYPE_CGROUP_DEVICE program that takes their place (pure logic: loading it is the shim's job).

A container must see the same devices whichever cgroup version its host runs, so the v2 program is built from
the state the v1 controller would reach after the same writes (as runc does): a default (allow or deny all,
set by an "a" rule) and exceptions per (type, major, minor) whose access letters merge. An allow exception
lets a request through only if it covers every letter asked for; a deny exception refuses any request that
shares a letter with it — the v1 kernel's two matching rules. A rule that would take letters out of a wider
wildcard exception is refused: v1 silently ignores it, which would leave the device open (runc refuses it too).
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway

from ..defaults import DEFAULT_DEVICES
from ..errors import PyociError

if TYPE_CHECKING:
    from typing import Any

# Devices every container needs, allowed after the config's own rules as runc does: mknod of any, the nodes
# every container gets, the console, ptmx and the ptys, and tun.
DEFAULT_RULES: list[dict[str, Any]] = [
    {"allow": True, "type": t, "major": major, "minor": minor, "access": access}
    for t, major, minor, access in (
        ("c", -1, -1, "m"), ("b", -1, -1, "m"),
        *(("c", major, minor, "rwm") for _, major, minor in DEFAULT_DEVICES),
        ("c", 5, 1, "rwm"), ("c", 5, 2, "rwm"), ("c", 136, -1, "rwm"), ("c", 10, 200, "rwm"))
]

# struct bpf_cgroup_dev_ctx: access_type = access << 16 | type; the kernel's BPF_DEVCG_* values
ACCESS = {"m": 1, "r": 2, "w": 4}
TYPE = {"b": 1, "c": 2}
ALL = 7

def v1_line(rule: dict[str, Any]) -> str:
    """The line written to devices.allow or devices.deny."""
    kind = rule.get("type", "a")
    if kind == "a":
        return "a"
    return f"{kind} {_num(rule.get('major'))}:{_num(rule.get('minor'))} {rule.get('access', 'rwm')}"


def _num(n: int | None) -> str:
    return "*" if n is None or n < 0 else str(n)


def _bits(access: str) -> int:
    return sum(ACCESS[c] for c in set(access))


def _letters(bits: int) -> str:
    return "".join(c for c in "rwm" if bits & ACCESS[c])


def reduce(rules: list[dict[str, Any]]) -> tuple[bool, dict[tuple[str, int, int], int]]:
    """The v1 controller's state after writing the config's rules, then the defaults: (default allow,
    exceptions (type, major, minor; -1 = any) → access bits). Starts from deny-all, as create's first write to
    devices.deny does."""
    default_allow, exceptions = False, {}
    config = len(rules)
    for i, rule in enumerate(rules + DEFAULT_RULES):
        kind, allow = rule.get("type", "a"), bool(rule.get("allow"))
        if kind == "a":
            default_allow, exceptions = allow, {}
            continue
        major, minor = _number_or_any(rule.get("major")), _number_or_any(rule.get("minor"))
        key, bits = (kind, major, minor), _bits(rule.get("access") or "rwm")
        if allow != default_allow:
            exceptions[key] = exceptions.get(key, 0) | bits
            continue
        for wider in ((kind, -1, minor), (kind, major, -1), (kind, -1, -1)):
            if wider != key and exceptions.get(wider, 0) & bits:
                where = f"devices[{i}]" if i < config else f"devices (default rule {v1_line(rule)})"
                outer = v1_line({"type": kind, "major": wider[1], "minor": wider[2],
                                 "access": _letters(exceptions[wider])})
                raise PyociError(f"linux.resources.{where}: {'allowing' if allow else 'denying'} {v1_line(rule)} "
                                 f"would punch a hole in the wider rule {outer}, which device rules cannot express")
        left = exceptions.pop(key, 0) & ~bits
        if left:
            exceptions[key] = left
    return default_allow, exceptions


def _number_or_any(n: int | None) -> int:
    return -1 if n is None or n < 0 else n


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One struct bpf_insn (x86-64 and every little-endian host). struct is imported here, where cgroup v2
    needs it: v1's device lines (all a create on a v1 or hybrid host needs of this module) do without."""
    from struct import pack

    return pack("<BBhI", code, src << 4 | dst, off, imm & 0xFFFFFFFF)


LDX_W, AND32_K, RSH32_K, MOV32_K, MOV32_X = 0x61, 0x54, 0x74, 0xB4, 0xBC
JNE32_K, JNE32_X, JEQ32_K, EXIT = 0x56, 0x5E, 0x16, 0x95
R0, R1, R2, R3, R4, R5 = range(6)


def program(rules: list[dict[str, Any]]) -> bytes:
    """The device filter for the rules (config order, defaults after): returns 1 to allow, 0 to refuse.

    Registers: r2 = device type, r3 = access asked for, r4 = major, r5 = minor; one block per exception that
    jumps to the next block on any mismatch. 32-bit jumps: majors and minors are unsigned 32-bit."""
    default_allow, exceptions = reduce(rules)
    out = [_insn(LDX_W, R2, R1, 0), _insn(AND32_K, R2, imm=0xFFFF), _insn(LDX_W, R3, R1, 0),
           _insn(RSH32_K, R3, imm=16), _insn(LDX_W, R4, R1, 4), _insn(LDX_W, R5, R1, 8)]
    for (kind, major, minor), bits in sorted(exceptions.items()):
        tests = [(JNE32_K, R2, 0, TYPE[kind])]
        if default_allow:  # a deny exception: any shared letter refuses
            tests += [(MOV32_X, R1, R3, 0), (AND32_K, R1, 0, bits), (JEQ32_K, R1, 0, 0)]
        elif bits != ALL:  # an allow exception: every letter asked for must be in it
            tests += [(MOV32_X, R1, R3, 0), (AND32_K, R1, 0, bits), (JNE32_X, R1, R3, 0)]
        if major >= 0:
            tests.append((JNE32_K, R4, 0, major))
        if minor >= 0:
            tests.append((JNE32_K, R5, 0, minor))
        block_end = len(tests) + 2  # then: r0 = verdict; exit
        for n, (code, dst, src, imm) in enumerate(tests):
            jump = code in (JNE32_K, JNE32_X, JEQ32_K)
            out.append(_insn(code, dst, src, block_end - n - 1 if jump else 0, imm))
        out += [_insn(MOV32_K, R0, imm=int(not default_allow)), _insn(EXIT)]
    out += [_insn(MOV32_K, R0, imm=int(default_allow)), _insn(EXIT)]
    return b"".join(out)
