"""pyoci's build: the cffi executor (API mode) and a config validator generated from specs/.

The generated validator exists so that `create` does not pay `import jsonschema` (~100 ms) per call;
jsonschema stays the reference that the test suite checks the generated code against. Its output is then
made cheaper still to import (see lean_validator): its regex patterns come compiled, it takes the numbers
pyoci.jsonio gives, so it imports neither re nor decimal (several ms per call each), and its raises do not
carry schema fragments that nothing reads.
"""
import json
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


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


class BuildWithValidator(build_py):
    def run(self):
        super().run()
        import fastjsonschema

        schema = json.loads((HERE / "specs" / "config.schema.json").read_text())
        code = lean_validator(fastjsonschema.compile_to_code(schema))
        target = Path(self.build_lib) / "pyoci" / "_config_validator.py"
        target.write_text("# Generated from specs/config.schema.json at build time; do not edit.\n" + code)


setup(
    name="pyoci",
    version="0.1.0",
    description="An OCI runtime-spec container runtime in Python, runc-compatible",
    packages=["pyoci", "pyoci.linux", "pyoci.cgroups", "pyoci.store"],
    python_requires=">=3.9",
    install_requires=["cffi>=1.15", "jsonschema>=4", "zstandard>=0.19"],
    extras_require={"test": ["pytest", "pytest-xdist", "hypothesis"]},
    setup_requires=["cffi>=1.15", "fastjsonschema>=2.16"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    cmdclass={"build_py": BuildWithValidator},
    scripts=["bin/pyoci"],
)
