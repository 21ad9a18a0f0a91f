"""Build-time helpers: how a program that embeds CPython (the `pyoci` command, csrc/launcher.c) is compiled
and linked. setup.py uses them, and so does the test that builds a program with deep-frozen code."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path


def compiler() -> list[str]:
    """The C compiler CPython was built with (or $CC)."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def static_archives(libs: list[str], cc: list[str]) -> list[str]:
    """The -lNAME of CPython's built-in modules (zlib's libz, pyexpat's libexpat) as their static archives
    where the compiler finds them: two fewer shared libraries for every call to map and relocate (~0.25 MiB
    of peak RSS). libm stays shared: glibc's static libm needs its static libc's internals."""
    args = []
    for arg in dict.fromkeys(libs):
        name = arg[2:] if arg.startswith("-l") and arg != "-lm" else None
        found = name and subprocess.run([*cc, f"-print-file-name=lib{name}.a"], capture_output=True,
                                        text=True).stdout.strip()
        args.append(found if found and os.path.isabs(found) else arg)
    return args


def static_libpython() -> Path | None:
    """CPython's static library where the installation has one and it is 3.11's (Debian 12's python3), else
    None. With it the launcher starts in CPython's core phase (PYOCI_CORE_PHASE: csrc/launcher.c) and its
    modules are deep-frozen (csrc/deepfreeze.py): both use CPython 3.11's internals, which 3.12 changes
    (its deep-frozen code needs more than interning, its code objects are laid out anew)."""
    var = sysconfig.get_config_var
    static = Path(var("LIBPL")) / var("LIBRARY")
    return static if static.exists() and sys.version_info[:2] == (3, 11) else None


def libpython_link_args(cc: list[str], static: Path | None) -> list[str]:
    """How to link CPython into a program: its static library where static_libpython found it (no
    position-independent code in Debian's, hence -no-pie), else the shared one. Only the static library
    gives the internal functions of CPython's that the launcher and deepfrozen.c call."""
    var = sysconfig.get_config_var
    if static:
        args = ["-no-pie", str(static), *static_archives(shlex.split(var("MODLIBS") or ""), cc)]
    else:
        args = [f"-L{var('LIBDIR')}", f"-Wl,-rpath,{var('LIBDIR')}", f"-lpython{var('LDVERSION')}"]
    return args + [arg for name in ("LIBS", "SYSLIBS", "LINKFORSHARED") for arg in shlex.split(var(name) or "")]
