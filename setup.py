"""pyoci's build: the cffi executor (API mode) and a config validator generated from specs/.

The generated validator exists so that `create` does not pay `import jsonschema` (~100 ms) per call;
jsonschema stays the reference that the test suite checks the generated code against.
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


class BuildWithValidator(build_py):
    def run(self):
        super().run()
        import fastjsonschema

        schema = json.loads((HERE / "specs" / "config.schema.json").read_text())
        code = fastjsonschema.compile_to_code(schema).replace(
            "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException", STANDALONE_ERRORS
        )
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
