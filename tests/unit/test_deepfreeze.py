"""The `pyoci` command's modules are deep-frozen (csrc/deepfreeze.py writes them as C objects, csrc/deepfrozen.c
hands them to the import). The whole suite runs pyoci's own modules that way; these tests hold the generator
to what pyoci's code does not happen to contain (every kind of constant, cells and free variables, set
constants, strings of every width), by building a small program with a deep-frozen module and comparing its
code, object by object, with what the compiler made. No root needed; the program needs CPython 3.11's static
library, as the command does."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[2] / "csrc"
sys.path.insert(0, str(CSRC))  # the build-time modules setup.py imports

import deepfreeze  # noqa: E402
import embedding  # noqa: E402

SOURCE = '''
BIG, NEGATIVE, SMALL = 2 ** 100, -(2 ** 40), (-5, 256, 257, -6, 0)
FLOATS = (0.1, -0.0, 1e300, 2.5)
TEXT = ("", "a", "naïve", "→ arrow", "emoji \\U0001F600", 'quote " back \\\\ what?? at@ tab\\t', "\\x00nul")
DATA = (b"", b"x", b"\\x00\\xff bytes", b"??=")
NESTED = ((1, (2, ("three", None, True, ...))), (), False)


def member(x):
    return x in {"alpha", "beta", 3}


def ordered():
    return sorted(x for x in {"c", "a", "b"})


def closure(a):
    b = a + 1

    def inner(c):
        return a + b + c
    return inner


def cell_argument(a):
    return lambda: a


class Base:
    def hello(self):
        return "base"


class Child(Base):
    def hello(self):
        return "child+" + super().hello()


def numbers(n):
    yield from range(n)


def signature(a, /, b, *args, c=3, **kwargs):
    return (a, b, args, c, sorted(kwargs))


def raises():
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return str(exc)


RESULT = (BIG, NEGATIVE, SMALL, FLOATS, TEXT, DATA, NESTED, member("alpha"), member("gamma"), ordered(),
          closure(1)(2), cell_argument(7)(), Child().hello(), list(numbers(3)),
          signature(1, 2, 4, 5, c=6, z=1), raises())
'''

DESCRIBE = '''
import types


def describe(obj):
    """What a code object is, constants and nested code included, as JSON can say it."""
    if isinstance(obj, types.CodeType):
        return {"code": [describe(getattr(obj, name)) for name in (
            "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags",
            "co_firstlineno", "co_code", "co_consts", "co_names", "co_varnames", "co_cellvars", "co_freevars",
            "co_filename", "co_name", "co_qualname", "co_linetable", "co_exceptiontable")]}
    if isinstance(obj, (tuple, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, frozenset) else obj
        return {type(obj).__name__: [describe(item) for item in items]}
    return {type(obj).__name__: repr(obj)}
'''

MAIN = r'''
#include <Python.h>
PyObject *pyoci_frozen_0(void);
static const unsigned char mark[] = {0xe3};
static const struct _frozen modules[] = {{"deeptest", mark, 1, 0, pyoci_frozen_0}, {0, 0, 0, 0, 0}};
int main(int argc, char **argv) {
    PyImport_FrozenModules = modules;
    Py_Initialize();
    return PyRun_SimpleString(argv[1]) != 0;
}
'''


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, types.CodeType]:
    static = embedding.static_libpython()
    if static is None:
        pytest.skip("deep-frozen modules need CPython 3.11's static library")
    work = tmp_path_factory.mktemp("deepfreeze")
    code = compile(SOURCE, "deeptest.py", "exec", dont_inherit=True)
    (work / "deepfrozen_data.h").write_text(deepfreeze.generate([code]))
    (work / "main.c").write_text(MAIN)
    cc = embedding.compiler()
    subprocess.run([*cc, "-O2", "-Wall", "-Werror", f"-I{sysconfig.get_paths()['include']}", f"-I{work}",
                    "-o", str(work / "deeptest"), str(work / "main.c"), str(CSRC / "deepfrozen.c"),
                    *embedding.libpython_link_args(cc, static)], check=True, capture_output=True, timeout=300)
    return work / "deeptest", code


def run(program: Path, script: str) -> str:
    return subprocess.run([str(program), script], check=True, capture_output=True, text=True, timeout=60).stdout


def test_the_deep_frozen_module_is_the_compiled_one_object_by_object(program):
    binary, code = program
    script = DESCRIBE + ("import _imp, json, deeptest\n"
                         "print(json.dumps(describe(_imp.get_frozen_object('deeptest'))))\n")
    namespace: dict[str, object] = {}
    exec(DESCRIBE, namespace)
    assert json.loads(run(binary, script)) == namespace["describe"](code)


def test_it_runs_as_the_source_does(program):
    binary, code = program
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert run(binary, "import deeptest; print(repr(deeptest.RESULT))").strip() == repr(namespace["RESULT"])


def test_set_constants_are_frozensets_once_imported(program):
    binary, _ = program
    script = ("import deeptest\n"
              "consts = deeptest.member.__code__.co_consts\n"
              "print([type(c).__name__ for c in consts if isinstance(c, (tuple, frozenset))])\n"
              "try:\n"
              "    deeptest.member([])\n"
              "except TypeError:\n"
              "    print('unhashable')\n")
    assert run(binary, script).split() == ["['frozenset']", "unhashable"]


def test_a_traceback_names_the_source_line(program):
    binary, _ = program
    script = ("import deeptest, traceback\n"
              "try:\n"
              "    deeptest.closure(None)\n"
              "except TypeError as exc:\n"
              "    frame = traceback.extract_tb(exc.__traceback__)[-1]\n"
              "    print(frame.filename, frame.lineno, frame.name)\n")
    assert run(binary, script).split() == ["deeptest.py", str(SOURCE.split("\n").index("    b = a + 1") + 1),
                                           "closure"]


def test_strings_of_more_than_one_module_are_one_object_in_the_shared_section():
    first = compile("def f(self):\n    return self.only_here\n", "one.py", "exec")
    second = compile("def g(self):\n    return 'only there'\n", "two.py", "exec")
    text = deepfreeze.generate([first, second])
    shared = [line for line in text.splitlines() if "DEEP(shared)" in line]
    assert any('"self"' in line for line in shared)
    assert not any('"only_here"' in line or '"only there"' in line for line in shared)
    assert sum('"self"' in line for line in text.splitlines()) == 1


def test_locals_cells_and_free_variables_keep_the_order_the_bytecode_uses():
    def outer(a, b):
        c = a

        def inner():
            return a + c
        return inner, b

    names, kinds = deepfreeze.localsplus(outer.__code__)
    assert names == ("a", "b", "inner", "c")
    assert list(kinds) == [deepfreeze.CO_FAST_LOCAL | deepfreeze.CO_FAST_CELL, deepfreeze.CO_FAST_LOCAL,
                           deepfreeze.CO_FAST_LOCAL, deepfreeze.CO_FAST_CELL]
    inner = next(c for c in outer.__code__.co_consts if isinstance(c, types.CodeType))
    assert deepfreeze.localsplus(inner) == (("a", "c"), bytes([deepfreeze.CO_FAST_FREE] * 2))


def test_a_constant_it_cannot_lay_out_fails_the_build():
    with pytest.raises(RuntimeError, match="cannot deep-freeze a constant of type complex"):
        deepfreeze.generate([compile("x = 1j", "c.py", "exec")])


def test_c_literals_escape_what_c_would_read_otherwise():
    assert deepfreeze.c_literal(b'a"b\\c??=\x00\xff1') == '"a\\042b\\134c\\077\\077=\\000\\3771"'
