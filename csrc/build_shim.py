"""cffi build script: compiles the executor as an API-mode extension at install time.

API mode (not ABI) because parsing a cdef at every start costs ~60 ms; a compiled module imports in ~1 ms.
"""
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = (HERE / "shim.h").read_text()

ffibuilder = FFI()
ffibuilder.cdef("\n".join(line for line in HEADER.splitlines() if not line.lstrip().startswith("#")))
ffibuilder.set_source(
    "pyoci._shim",
    '#include "shim.c"',
    include_dirs=[str(HERE)],
    libraries=["seccomp"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE / "build"), verbose=True)
