"""The plan block the runtime hands the executor (pyoci/linux/shim.py's encode), read back through the compiled
extension's own structs: every op's layout in pyoci._protocol is the header's, and each field lands where the C
side reads it. No kernel needed."""
from __future__ import annotations

import pytest

from pyoci import _protocol
from pyoci import steps as st
from pyoci._shim import ffi, lib
from pyoci.errors import PyociError
from pyoci.linux import shim
from pyoci.record import field_names

STEP_CLASSES = [c for c in vars(st).values() if isinstance(c, type) and issubclass(c, st.Step) and c is not st.Step]


def test_the_generated_layouts_are_the_compiled_headers():
    assert _protocol.STEP == ffi.sizeof("struct pyoci_step")
    assert _protocol.WHAT == ffi.offsetof("struct pyoci_step", "what")
    ops = {name[len("PYOCI_OP_"):].lower(): getattr(lib, name) for name in dir(lib) if name.startswith("PYOCI_OP_")}
    assert {name: number for name, (number, _, _) in _protocol.STEPS.items()} == ops
    assert sorted(st.op_name(c) for c in STEP_CLASSES) == sorted(ops)  # one step class per op
    for name, (_, _, fields) in _protocol.STEPS.items():
        for field, kind, offset in fields:
            where = ffi.offsetof("struct pyoci_step", "u", name, field)
            assert offset == where + (ffi.offsetof("struct pyoci_u64s", "v") if kind == "u" else 0), (name, field)


@pytest.mark.parametrize("cls", STEP_CLASSES, ids=lambda c: c.__name__)
def test_every_step_class_is_an_op_with_the_same_fields(cls):
    _, _, fields = _protocol.STEPS[st.op_name(cls)]
    assert {name for name, _, _ in fields} == set(field_names(cls)) - {"what"}


def decoded(steps: list[st.Step]):
    """The encoded plan in cffi's memory, moved as the executor moves it: the step array, and what keeps it."""
    block, relocs = shim.encode(steps)
    buf = ffi.new("char[]", block)
    base = int(ffi.cast("uintptr_t", buf))
    slots = ffi.cast("unsigned long long *", buf)
    for at in relocs:
        assert at % 8 == 0 and slots[at // 8] < len(block)
        slots[at // 8] += base
    return ffi.cast("struct pyoci_step *", buf), buf


def test_each_kind_of_field_lands_where_the_c_side_reads_it():
    steps = [st.Mount("mounts[0]", target="/proc", fstype="proc", flags=6, where=st.IN_ROOT_EXACT),
             st.Hook("hooks.prestart[0]", path="/bin/h", argv=["h", "ünï"], envp=[], timeout=5, state=1),
             st.User("process.user", uid=1000, gid=1000, groups=[1, 2, 3]),
             st.Rlimit("process.rlimits[0]", resource=7, soft=(1 << 64) - 1, hard=(1 << 64) - 1),
             st.Sync("ready", message=st.READY),
             st.Setsid("process"),
             st.CpuAffinity("process.execCPUAffinity")]
    c, keep = decoded(steps)
    assert [c[i].op for i in range(len(steps))] == [getattr(lib, f"PYOCI_OP_{st.op_name(type(s)).upper()}")
                                                    for s in steps]
    assert [ffi.string(c[i].what).decode() for i in range(len(steps))] == [s.what for s in steps]
    m = c[0].u.mount
    assert (m.source, ffi.string(m.target), ffi.string(m.fstype), m.data) == (ffi.NULL, b"/proc", b"proc", ffi.NULL)
    assert (m.flags, m.where, m.as_file, m.tree_fd) == (6, st.IN_ROOT_EXACT, 0, -1)
    h = c[1].u.hook
    assert [ffi.string(h.argv[i]).decode() for i in range(2)] == ["h", "ünï"] and h.argv[2] == ffi.NULL
    assert h.envp[0] == ffi.NULL and (h.timeout, h.state) == (5, 1)
    u = c[2].u.user
    assert (u.uid, u.gid, u.setgroups, [u.groups.v[i] for i in range(u.groups.n)]) == (1000, 1000, 1, [1, 2, 3])
    assert (c[3].u.rlimit.soft, c[3].u.rlimit.hard) == (-1, -1)  # RLIM_INFINITY, as the C long long holds it
    assert c[4].u.sync.message == lib.PYOCI_MSG_READY and c[4].u.sync.wait == 0
    assert (c[6].u.cpu_affinity.mask.v, c[6].u.cpu_affinity.mask.n) == (ffi.NULL, 0)


def test_a_number_no_field_holds_names_the_step():
    with pytest.raises(PyociError, match=r"^process.rlimits\[0\]: a number is out of range$"):
        shim.encode([st.Rlimit("process.rlimits[0]", resource=7, soft=1 << 64 + 1, hard=0)])
    with pytest.raises(PyociError, match=r"^linux.namespaces\[0\]: a number is out of range$"):
        shim.encode([st.Setns("linux.namespaces[0]", fd=1 << 31, nstype=0)])

