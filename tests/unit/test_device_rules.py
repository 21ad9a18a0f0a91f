"""Device rules: v1 lines, the v1 state they reduce to, and the cgroup v2 eBPF program — run here by a small
interpreter of the instructions the generator emits, so the bytes themselves are checked (the kernel's side:
tests/integration/test_cgroups.py and the v2 guest)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from pyoci.cgroups.devices import program, reduce, v1_line
from pyoci.errors import PyociError

ACC = {"m": 1, "r": 2, "w": 4}


def run(prog: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Interprets the program on one request: 1 allows, 0 refuses."""
    ctx = struct.pack("<III", sum(ACC[c] for c in access) << 16 | {"b": 1, "c": 2}[kind], major, minor)
    regs = [0] * 11
    insns = [struct.unpack("<BBhI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    pc = 0
    while True:
        code, r, off, imm = insns[pc]
        dst, src = r & 0xF, r >> 4
        pc += 1
        if code == 0x61:
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]  # r1 is the context
            assert src == 1
        elif code == 0x54:
            regs[dst] &= imm
        elif code == 0x74:
            regs[dst] >>= imm
        elif code == 0xB4:
            regs[dst] = imm
        elif code == 0xBC:
            regs[dst] = regs[src]
        elif code in (0x56, 0x5E, 0x16):
            other = regs[src] if code == 0x5E else imm
            if (regs[dst] != other) if code != 0x16 else (regs[dst] == other):
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unknown opcode {code:#x}")


def test_v1_lines():
    assert v1_line({"allow": False, "access": "rwm"}) == "a"
    assert v1_line({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}) == "c 1:3 rw"
    assert v1_line({"allow": True, "type": "b", "access": "m"}) == "b *:* m"


def test_default_deny_with_the_default_devices():
    prog = program([{"allow": False, "access": "rwm"}])
    assert run(prog, "c", 1, 3, "rw") == 1  # /dev/null
    assert run(prog, "c", 136, 4, "rw") == 1  # a pts
    assert run(prog, "c", 10, 229, "r") == 0  # /dev/fuse
    assert run(prog, "c", 10, 229, "m") == 1  # mknod of any char device
    assert run(prog, "b", 8, 0, "m") == 1
    assert run(prog, "b", 8, 0, "r") == 0


def test_allow_covers_only_its_letters():
    prog = program([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                       "access": "r"}])
    assert run(prog, "c", 10, 229, "r") == 1
    assert run(prog, "c", 10, 229, "w") == 0
    assert run(prog, "c", 10, 229, "rw") == 0  # every letter asked for must be allowed
    assert run(prog, "c", 10, 228, "r") == 0
    assert run(prog, "b", 10, 229, "r") == 0


def test_allow_all_then_deny_refuses_any_shared_letter():
    prog = program([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 10, "minor": 229,
                                                      "access": "w"}])
    assert run(prog, "c", 10, 229, "r") == 1
    assert run(prog, "c", 10, 229, "w") == 0
    assert run(prog, "c", 10, 229, "rw") == 0  # v1: a deny exception refuses a partial match
    assert run(prog, "b", 8, 0, "rwm") == 1


def test_wildcards_and_merged_letters():
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 8, "access": "r"},
             {"allow": True, "type": "b", "major": 8, "access": "w"}, {"allow": True, "type": "c", "minor": 7,
                                                                      "access": "rwm"}]
    prog = program(rules)
    assert run(prog, "b", 8, 16, "rw") == 1  # same rule twice: letters merge, as v1 does
    assert run(prog, "b", 9, 16, "r") == 0
    assert run(prog, "c", 99, 7, "rw") == 1
    assert run(prog, "c", 99, 6, "r") == 0


def test_a_later_all_rule_resets_what_came_before():
    prog = program([{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                    {"allow": False, "type": "a", "access": "rwm"}])
    assert run(prog, "c", 10, 229, "r") == 0
    assert run(prog, "c", 1, 3, "r") == 1  # the defaults come after the config's rules


def test_deny_removes_letters_of_the_same_rule():
    prog = program([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229},
                    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}])
    assert run(prog, "c", 10, 229, "r") == 1
    assert run(prog, "c", 10, 229, "w") == 0


def test_a_hole_in_a_wildcard_is_refused():
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "access": "rwm"},
             {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}]
    with pytest.raises(PyociError, match=r"devices\[2\]: denying c 10:229 w would punch a hole in the wider rule "
                                         r"c 10:\* rwm"):
        reduce(rules)
    # letters the wider rule does not have are no hole
    assert reduce(rules[:1] + [{"allow": True, "type": "c", "major": 10, "access": "r"}, rules[2]])[0] is False


def test_a_default_rule_that_would_punch_a_hole_is_named():
    with pytest.raises(PyociError, match=r"default rule c 1:3 rwm"):
        reduce([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "access": "rw"}])


def test_majors_beyond_31_bits_compare_as_unsigned():
    prog = program([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 0xFFFFFFF0,
                                                       "minor": 1, "access": "r"}])
    assert run(prog, "c", 0xFFFFFFF0, 1, "r") == 1
    assert run(prog, "c", 0x7FFFFFF0, 1, "r") == 0


rule = st.fixed_dictionaries(
    {"allow": st.booleans(), "type": st.sampled_from("abc"), "major": st.sampled_from([-1, 1, 10]),
     "minor": st.sampled_from([-1, 3, 229]), "access": st.sampled_from(["r", "w", "m", "rw", "rwm"])})


@given(st.lists(rule, max_size=6), st.sampled_from("bc"), st.sampled_from([1, 10, 11]),
       st.sampled_from([3, 229, 4]), st.sampled_from(["r", "w", "m", "rw", "rwm"]))
def test_program_agrees_with_the_v1_matching_rules(rules, kind, major, minor, access):
    """The program's verdict equals the v1 kernel's check on the reduced state, for any rule list."""
    try:
        default_allow, exceptions = reduce(rules)
    except PyociError:
        return
    asked = sum(ACC[c] for c in access)
    hits = [bits for (k, ma, mi), bits in exceptions.items()
            if k == kind and ma in (-1, major) and mi in (-1, minor)]
    if default_allow:
        expect = not any(bits & asked for bits in hits)
    else:
        expect = any(asked & ~bits == 0 for bits in hits)
    assert run(program(rules), kind, major, minor, access) == int(expect)
