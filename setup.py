"""pyoci's build: the cffi executor (API mode), a config validator generated from specs/, and the `pyoci`
command, CPython embedded with the package's modules frozen in (csrc/launcher.c says why).

The generated validator exists so that `create` does not pay `import jsonschema` (~100 ms) per call;
jsonschema stays the reference that the test suite checks the generated code against. Its output is then
made cheaper still to import (see lean_validator): its regex patterns come compiled, it takes the numbers
pyoci.jsonio gives, so it imports neither re nor decimal (several ms per call each), and its raises do not
carry schema fragments that nothing reads.
"""
from __future__ import annotations

import __future__
import importlib.util
import json
import marshal
import os
import struct
import subprocess
import sys
import sysconfig
from itertools import accumulate
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

from distutils.command.build_scripts import build_scripts  # setuptools' own distutils, once setuptools is in

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "csrc"))  # csrc/'s build-time modules (pip does not put the source tree on it)

import deepfreeze  # noqa: E402
import embedding  # noqa: E402


# The generated code imports its exception from fastjsonschema; a local one keeps it a build-only tool.
STANDALONE_ERRORS = """
class JsonSchemaValueException(ValueError):
    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message, self.value, self.name, self.definition, self.rule = message, value, name, definition, rule


JsonSchemaValuesException = JsonSchemaValueException
"""


def must_replace(code: str, old: str, new: str) -> str:
    """A post-processing edit that must apply: a new fastjsonschema that words its output differently
    fails the build instead of shipping an unprocessed validator."""
    if old not in code:
        raise RuntimeError(f"fastjsonschema's output changed: no {old!r} in it")
    return code.replace(old, new)


def precompiled_patterns(code: str) -> str:
    """REGEX_PATTERNS as _sre pattern objects built from the code that re's compiler makes now, at build
    time, so that importing the validator never imports re (re, its parser and compiler, and enum cost
    several ms per call). The compiled code is only valid for the _sre that it was made for: an
    interpreter whose _sre differs (MAGIC, CODESIZE) or another Python version compiles the patterns
    with re as fastjsonschema's code did."""
    import re
    import sys
    import _sre

    start = code.index("REGEX_PATTERNS = {\n")
    end = code.index("\n}\n", start) + 3
    block = code[start:end]
    try:
        from re import _compiler, _parser  # Python 3.11+; before, re's compiler is not laid out this way
    except ImportError:
        return code[:start] + "import re\n\n" + block + code[end:]
    namespace: dict = {}
    exec(compile("import re\n" + block, "REGEX_PATTERNS", "exec"), namespace)
    entries = []
    for key, pattern in namespace["REGEX_PATTERNS"].items():
        parsed = _parser.parse(pattern.pattern, pattern.flags)
        flags = pattern.flags | parsed.state.flags
        ops = [int(op) for op in _compiler._code(parsed, flags)]
        indexgroup = [None] * parsed.state.groups
        for name, i in parsed.state.groupdict.items():
            indexgroup[i] = name
        args = (pattern.pattern, flags, ops, parsed.state.groups - 1, dict(parsed.state.groupdict), tuple(indexgroup))
        if _sre.compile(*args) != re.compile(pattern.pattern, pattern.flags):
            raise RuntimeError(f"pattern {key!r} does not precompile to what re compiles")
        entries.append(f"        {key!r}: _sre.compile{args!r},\n")
    build = (_sre.MAGIC, _sre.CODESIZE, tuple(sys.version_info[:2]))
    fast = ("import sys\nimport _sre\n\n"
            f"if (_sre.MAGIC, _sre.CODESIZE, sys.version_info[:2]) == {build!r}:\n"
            "    REGEX_PATTERNS = {\n" + "".join(entries) + "    }\nelse:\n    import re\n\n"
            + "".join(f"    {line}\n" if line else "\n" for line in block.rstrip("\n").split("\n")) + "\n")
    return code[:start] + fast + code[end:]


def without_definitions(code: str) -> str:
    """Each raise in fastjsonschema's code carries the schema of the failing place as a dict literal
    (`definition=`), which pyoci never reads: dropped, the module is some 40% smaller and unmarshals that
    much faster on every `create`."""
    import ast

    class Strip(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.Call:
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id == "JsonSchemaValueException":
                node.keywords = [k for k in node.keywords if k.arg != "definition"]
            return node

    return ast.unparse(Strip().visit(ast.parse(code))) + "\n"


def lean_validator(code: str) -> str:
    """fastjsonschema's module made standalone and cheap to import."""
    code = must_replace(code, "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException",
                        STANDALONE_ERRORS)
    # spec.load reads reals as pyoci.jsonio.Real, which no type check takes: Decimal never reaches a
    # number's bounds check, so the validator need not import decimal to name it
    code = must_replace(code, "from decimal import Decimal\n", "")
    code = must_replace(code, "(int, float, Decimal)", "(int, float)")
    code = must_replace(code, "import re\n", "")
    return without_definitions(precompiled_patterns(code))


# A plan field's C type -> its struct-module code and its kind for pyoci/linux/shim.py (n a number, s a string, v
# a vector of strings). Pointers travel as 8-byte offsets into the plan.
STEP_FIELDS = {"int": ("i", "n"), "long long": ("q", "n"), "char *": ("q", "s"), "char * *": ("q", "v")}


def _step_field(cname: str, where: str) -> tuple[str, str]:
    if cname not in STEP_FIELDS:
        raise RuntimeError(f"{where}: protocol_module cannot lay out {cname}")
    return STEP_FIELDS[cname]


def _step_layouts(ffi) -> tuple[int, int, dict[str, tuple[int, str, tuple[tuple[str, str, int], ...]]]]:
    """struct pyoci_step's size, the offset of its `what`, and per op (its union member's name): the op's
    number, a struct-module format that lays out a whole step of it (op, what, then the member's fields, with
    the padding between), and each field's name, kind and offset in the step. Kinds: STEP_FIELDS's, and u for
    a struct pyoci_u64s (its pointer and count; the offset is the pointer's)."""
    step = dict(ffi.typeof("struct pyoci_step").fields)
    if step["op"].type.cname != "int" or step["what"].type.cname != "char *":
        raise RuntimeError("struct pyoci_step: protocol_module expects an int op and a char *what")
    union = step["u"]
    members = dict(union.type.fields)
    u64s = dict(ffi.typeof("struct pyoci_u64s").fields)
    u64s_n, _ = _step_field(u64s["n"].type.cname, "struct pyoci_u64s.n")
    layouts = {}
    for cname, number in ffi.typeof("enum pyoci_op").relements.items():
        name = cname[len("PYOCI_OP_"):].lower()
        slots = [(0, "i"), (step["what"].offset, "q")]  # (offset, code), in order
        fields = []
        for field, f in members[name].type.fields if name in members else ():
            at = union.offset + f.offset
            if f.type.cname == "struct pyoci_u64s":
                slots += [(at + u64s["v"].offset, "q"), (at + u64s["n"].offset, u64s_n)]
                fields.append((field, "u", at + u64s["v"].offset))
            else:
                code, kind = _step_field(f.type.cname, f"struct pyoci_{name}.{field}")
                slots.append((at, code))
                fields.append((field, kind, at))
        fmt, end = "=", 0
        for at, code in slots:
            fmt += (f"{at - end}x" if at > end else "") + code
            end = at + struct.calcsize("=" + code)
        layouts[name] = (number, fmt, tuple(fields))
    return ffi.sizeof("struct pyoci_step"), step["what"].offset, layouts


def protocol_module() -> str:
    """The executor's message kinds, struct pyoci_msg's layout and the plan's step layouts, read from
    csrc/shim.h by cffi's parser at build time: the runtime's side of the protocol (pyoci/messages.py)
    decodes messages with them, so that `start`, which only reads messages, loads neither the compiled
    extension nor _cffi_backend; and pyoci/linux/shim.py lays a plan out with them, without cffi's structs
    (made at the first use of each, ~0.2 ms a create, and then filled field by field through cffi)."""
    from cffi import FFI

    ffi = FFI()
    ffi.cdef("\n".join(line for line in (HERE / "csrc" / "shim.h").read_text().splitlines()
                       if not line.lstrip().startswith("#")))
    kinds = {name[len("PYOCI_MSG_"):]: value for name, value in ffi.typeof("enum pyoci_msg_type").relements.items()}
    msg = ffi.typeof("struct pyoci_msg")
    if any(field.type.cname != "int" for _, field in msg.fields):
        raise RuntimeError("struct pyoci_msg: protocol_module reads C ints only")
    fields = {name: field.offset for name, field in msg.fields}
    step, what, layouts = _step_layouts(ffi)
    return ("# Generated from csrc/shim.h at build time (setup.py, protocol_module); do not edit.\n"
            f"MSG_KINDS = {kinds!r}\n"
            f"MSG_FIELDS = {fields!r}  # struct pyoci_msg: field -> offset of its C int\n"
            f"MSG_HEADER = {ffi.sizeof('struct pyoci_msg')}\n"
            f"INT = {ffi.sizeof('int')}\n"
            f"STEP = {step}  # sizeof(struct pyoci_step)\n"
            f"WHAT = {what}  # offsetof(struct pyoci_step, what)\n"
            "# op (union member) -> (number, struct format of a whole step, ((field, kind, offset in the step), ...))\n"
            f"STEPS = {layouts!r}\n")


class BuildWithValidator(build_py):
    """build_py, and the two modules generated from the project's own sources: the config validator and the
    executor protocol's numbers."""

    def run(self):
        super().run()
        import fastjsonschema

        schema = json.loads((HERE / "specs" / "config.schema.json").read_text())
        code = lean_validator(fastjsonschema.compile_to_code(schema))
        target = Path(self.build_lib) / "pyoci" / "_config_validator.py"
        target.write_text("# Generated from specs/config.schema.json at build time; do not edit.\n" + code)
        (Path(self.build_lib) / "pyoci" / "_protocol.py").write_text(protocol_module())


# Standard-library modules that the interpreter's start-up and the lifecycle commands would otherwise find and
# read from disk on every call (the rest of what they use is built in or frozen in CPython already).
STDLIB_FROZEN = ("encodings", "encodings.aliases", "encodings.utf_8", "struct")


def c_string(text: str) -> str:
    """A C string literal of text's UTF-8 bytes."""
    return deepfreeze.c_literal(text.encode())


FUTURE_ANNOTATIONS = b"from __future__ import annotations\n"


def compiled(name: str, source: Path, filename: str) -> tuple[bytes, str, int]:
    """What to compile for one frozen module: its source, file name and compiler flags. A module's
    `from __future__ import annotations` becomes the compiler flag it stands for (an empty line keeps the
    line numbers): the same code, without importing `__future__` at run time (~0.2 ms a call)."""
    lines, flags = source.read_bytes().splitlines(keepends=True), 0
    if FUTURE_ANNOTATIONS in lines:
        lines[lines.index(FUTURE_ANNOTATIONS)], flags = b"\n", __future__.annotations.compiler_flag
    return b"".join(lines), filename, flags


def marshalled(units: list[tuple[bytes, str, int]]) -> list[bytes]:
    """Each (source, file name, flags) compiled and marshalled by this Python under -X no_debug_ranges: code
    without column positions (a traceback keeps its line numbers and loses its ^^^ marks), some 10% less for
    every call to unmarshal and keep in memory. And with docstrings left out (optimize=2, as `python -OO`):
    another 9%. They are for readers of the source and of the library, which imports the .py files; the
    command reads none (pyoci has no assert either, which optimize=2 would drop too)."""
    program = ("import marshal, sys\n"
               "units = marshal.load(sys.stdin.buffer)\n"
               "marshal.dump([marshal.dumps(compile(text, filename, 'exec', flags=flags, dont_inherit=True,\n"
               "                                    optimize=2))\n"
               "              for text, filename, flags in units], sys.stdout.buffer)\n")
    return marshal.loads(subprocess.run([sys.executable, "-X", "no_debug_ranges", "-c", program],
                                        input=marshal.dumps(units), capture_output=True, check=True).stdout)


def frozen_table(modules: list[tuple[str, bool]], code: list[bytes], deep: bool) -> str:
    """The PyImport_FrozenModules entries. Deep (deep-frozen code, csrc/deepfreeze.py): each names its
    module's pyoci_frozen_N (csrc/deepfrozen.c) as its get_code, and CPython, which looks for data before
    it calls get_code, a byte that is never read. Else the modules' marshalled code, as one C array."""
    entries = []
    if deep:
        declarations = "".join(f"PyObject *pyoci_frozen_{i}(void);\n" for i in range(len(modules)))
        for i, (name, is_package) in enumerate(modules):
            entries.append(f"    {{{c_string(name)}, deepfrozen_mark, 1, {int(is_package)}, pyoci_frozen_{i}}},\n")
        head = declarations + "static const unsigned char deepfrozen_mark[] = {0xe3};\n"
    else:
        data = b"".join(code)
        for (name, is_package), offset, size in zip(modules, accumulate([0, *map(len, code)]), map(len, code)):
            entries.append(f"    {{{c_string(name)}, frozen_data + {offset}, {size}, {int(is_package)}, NULL}},\n")
        rows = ",\n".join(",".join(map(str, data[i:i + 32])) for i in range(0, len(data), 32))
        head = f"static const unsigned char frozen_data[] = {{\n{rows}\n}};\n"
    return head + "static const struct _frozen frozen_modules[] = {\n" + "".join(entries) + "    {0, 0, 0, 0, 0}\n};\n"


def launcher_data(package_root: Path, generated: Path, deep: bool) -> None:
    """launcher.c's generated header: where the linked interpreter's libraries are, where the package is
    installed relative to the command, and every module to freeze; deep, deepfrozen.c's too. Code objects
    name the installed files, so a --debug traceback shows their lines."""
    paths = sysconfig.get_paths()
    modules = []
    for source in sorted(package_root.joinpath("pyoci").rglob("*.py")):
        parts = source.relative_to(package_root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        modules.append((".".join(parts[:-1] if is_package else parts), source, is_package,
                        os.path.join(paths["purelib"], *source.relative_to(package_root).parts)))
    for name in STDLIB_FROZEN:
        spec = importlib.util.find_spec(name)
        modules.append((name, Path(spec.origin), spec.submodule_search_locations is not None, spec.origin))
    code = marshalled([compiled(name, source, filename) for name, source, _, filename in modules])
    constants = {"PYOCI_HOME": sys.base_prefix, "PYOCI_STDLIB": paths["stdlib"],
                 "PYOCI_DYNLOAD": sysconfig.get_config_var("DESTSHARED"),
                 "PYOCI_SITE_FROM_BIN": os.path.relpath(paths["purelib"], paths["scripts"])}
    if deep:
        (generated / "deepfrozen_data.h").write_text(deepfreeze.generate([marshal.loads(c) for c in code]))
    (generated / "launcher_data.h").write_text(
        "/* Generated by setup.py (launcher_data); do not edit. */\n"
        + "".join(f"#define {key} {c_string(value)}\n" for key, value in constants.items())
        + frozen_table([(name, is_package) for name, _, is_package, _ in modules], code, deep))


# What the launcher adds with the static library: the core phase, and the three steps of CPython's it wraps.
CORE_PHASE_ARGS = ["-DPYOCI_CORE_PHASE", "-Wl,--wrap=_Py_Deepfreeze_Init", "-Wl,--wrap=_PyGC_Init",
                   "-Wl,--wrap=_PyObject_LookupAttr"]


class BuildLauncher(build_scripts):
    """Builds the `pyoci` command from csrc/launcher.c and the package build_py made, in place of copying a
    script: install_scripts and wheels then put it where a console script goes."""

    def run(self):
        package_root = Path(self.get_finalized_command("build_py").build_lib)
        generated = Path(self.get_finalized_command("build").build_temp) / "launcher"
        generated.mkdir(parents=True, exist_ok=True)
        static = embedding.static_libpython()
        launcher_data(package_root, generated, deep=static is not None)
        target = Path(self.build_dir) / "pyoci"
        target.parent.mkdir(parents=True, exist_ok=True)
        cc = embedding.compiler()
        sources = [HERE / "csrc" / "launcher.c", *([HERE / "csrc" / "deepfrozen.c"] if static else [])]
        subprocess.run([*cc, "-O2", "-Wall", f"-I{sysconfig.get_paths()['include']}", f"-I{generated}",
                        "-o", str(target), *map(str, sources), *(CORE_PHASE_ARGS if static else []),
                        *embedding.libpython_link_args(cc, static)], check=True)


setup(
    name="pyoci",
    version="0.1.0",
    description="An OCI runtime-spec container runtime in Python, runc-compatible",
    packages=["pyoci", "pyoci.linux", "pyoci.cgroups", "pyoci.store"],
    python_requires=">=3.9",
    install_requires=["cffi>=1.15", "jsonschema>=4", "zstandard>=0.19"],
    # the CRI end-to-end tests: CRI v1's generated gRPC stubs, and a websocket client for exec/attach streams
    extras_require={"test": ["pytest", "pytest-xdist", "pytest-timeout", "hypothesis",
                             "container-runtime-interface-api", "websocket-client"]},
    setup_requires=["cffi>=1.15", "fastjsonschema>=2.16"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    cmdclass={"build_py": BuildWithValidator, "build_scripts": BuildLauncher},
    scripts=["csrc/launcher.c"],  # the source of the one script, which BuildLauncher compiles
)
