"""The lifecycle commands import nothing heavy: each stdlib module below costs every call milliseconds (json
pulls re and enum, dataclasses pulls inspect and ast, signal and socket pull enum), and jsonschema ~100 ms.
pyoci reaches the same ends through _json (pyoci.jsonio), _signal, _socket (pyoci.linux.unixsock),
pyoci.record and a validator generated at build time. Each command runs as the installed `pyoci` command
(csrc/launcher.c) with PYOCI_IMPORTTIME set, its -X importtime, whose report names every module imported."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PYOCI, Runtime, default_config, need_root

HEAVY = {"json", "re", "enum", "dataclasses", "inspect", "typing", "decimal", "signal", "socket", "selectors",
         "subprocess", "ast", "jsonschema", "fastjsonschema"}


def imported(report: str) -> set[str]:
    """Module names from -X importtime's lines: 'import time: self | cumulative |   name'."""
    return {line.rsplit("|", 1)[1].strip() for line in report.splitlines() if line.startswith("import time:")}


# What the lifecycle commands do without, on top: `os` (with _collections_abc and posixpath: ~5 M
# instructions, a quarter of a short call; pyoci.linux.fs and posix serve), `stat` (0.2 M of a create: _stat,
# its C core, serves), `errno` (0.2 M: pyoci.errors has the numbers pyoci names), and for the short ones
# (state, start, kill, delete, ps, pause, resume, list) the compiled extension (start reads the executor's
# messages through pyoci._protocol).
NO_OS = HEAVY | {"os", "posixpath", "_collections_abc", "stat", "errno"}
SHORT_HEAVY = NO_OS | {"_cffi_backend", "pyoci._shim"}


def heavy(report: str, also: frozenset[str] | set[str] = frozenset()) -> list[str]:
    return sorted(imported(report) & (HEAVY | also))


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    # -I and a scratch cwd: the installed pyoci, never the source tree (which has no built parts).
    return subprocess.run([sys.executable, "-I", "-X", "importtime", "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_importing_the_runtime_imports_nothing_heavy(tmp_path):
    result = run_python(
        "import sys, pyoci.cli, pyoci.container, pyoci.spec, pyoci.state, pyoci.foreground, pyoci.execute\n"
        "import pyoci.plan, pyoci.cgroups, pyoci.cgroups.limits, pyoci.features, pyoci.linux.idmap\n"
        "assert pyoci.spec.__file__.startswith(sys.prefix), pyoci.spec.__file__\n",
        tmp_path)
    assert result.returncode == 0, result.stderr
    assert heavy(result.stderr) == []


def test_loading_a_config_imports_nothing_heavy(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(default_config(["sh"])))
    result = run_python(
        "import sys, pyoci.spec\n"
        f"cfg = pyoci.spec.load({str(bundle)!r})\n"
        "assert cfg.process.args == ['sh'], cfg.process\n"
        "assert 'pyoci._config_validator' in sys.modules\n",
        tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pyoci._config_validator" in imported(result.stderr)
    assert heavy(result.stderr) == []


@pytest.fixture
def lean(tmp_path) -> Runtime:
    """The installed pyoci command, reporting its imports on stderr."""
    need_root()
    rt = Runtime(tmp_path / "state", run_as={"env": {**os.environ, "PYOCI_IMPORTTIME": "1"}})
    yield rt
    rt.cleanup()


# CPython's main phase of initialisation (csrc/launcher.c, pyoci/corephase.py): its path-based importers and
# `encodings`, ~5 M instructions, which the lifecycle commands do without.
MAIN_PHASE = {"_frozen_importlib_external", "encodings", "zipimport"}


def call(rt: Runtime, *args: str) -> None:
    also = SHORT_HEAVY if args[0] in SHORT else NO_OS if args[0] in ("create", "run", "exec") else set()
    if core_phase():  # and the short ones read and write through posix: not even _io (cffi loads it), nor
        # _socket (start connects through the command itself) and the protocol's side that create drives
        also = also | MAIN_PHASE | (SHORT_CORE if args[0] in SHORT else set())
    assert heavy(rt(*args).stderr, also) == [], f"pyoci {args[0]}"


def core_phase() -> bool:
    """Whether the command starts in CPython's core phase: built against CPython's static library."""
    import sysconfig

    return Path(sysconfig.get_config_var("LIBPL"), sysconfig.get_config_var("LIBRARY")).exists()


SHORT = {"--version", "state", "start", "list", "pause", "resume", "ps", "kill", "delete"}
SHORT_CORE = {"_io", "_socket", "pyoci.sync", "pyoci.record"}


def test_lifecycle_commands_import_nothing_heavy(lean, bundle):
    cid = lean.new_id("imp")
    call(lean, "--version")
    call(lean, "features")
    call(lean, "run", "--bundle", str(bundle(["true"])), lean.new_id("imp"))
    call(lean, "create", "--bundle", str(bundle(["sleep", "100"])), cid)
    call(lean, "state", cid)
    call(lean, "start", cid)
    call(lean, "list")
    call(lean, "exec", cid, "true")
    call(lean, "pause", cid)
    call(lean, "resume", cid)
    call(lean, "ps", "--format", "json", cid)  # (its table runs ps(1) through subprocess)
    call(lean, "kill", cid, "KILL")
    call(lean, "delete", "--force", cid)


def _opened(pyoci, trace, *args: str) -> list[str]:
    """The files one call of the command opened (strace's lines of them)."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    subprocess.run(["strace", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace), PYOCI,
                    "--root", str(pyoci.root), *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
    return trace.read_text().splitlines()


def test_the_command_reads_no_python_module_from_disk(pyoci, bundle, tmp_path):
    """The command carries pyoci's modules and the standard library's start-up ones frozen in: a call opens
    no .py or .pyc file (each would be a path search, a stat and a read)."""
    cid = pyoci.new_id("frz")
    for args in (["run", "--bundle", str(bundle(["true"])), pyoci.new_id("frz")],
                 ["create", "--bundle", str(bundle(["true"])), cid], ["state", cid], ["start", cid],
                 ["delete", "--force", cid], ["--version"]):
        opened = [line for line in _opened(pyoci, tmp_path / "trace", *args) if re.search(r'\.pyc?"', line)]
        assert opened == [], f"pyoci {args[0]}"


def test_a_short_command_reads_the_state_once(pyoci, bundle, tmp_path):
    """state, start, ps, kill and delete read state.json once, under the container's lock where they take it
    (Runtime.container: no read before it)."""
    cid = pyoci.new_id("once")
    pyoci("create", "--bundle", str(bundle(["sleep", "100"])), cid)
    for args in (["state", cid], ["start", cid], ["ps", "--format", "json", cid], ["kill", cid, "KILL"],
                 ["delete", "--force", cid]):
        reads = [line for line in _opened(pyoci, tmp_path / "trace", *args) if f'/{cid}/state.json"' in line]
        assert len(reads) == 1, (args, reads)


def test_a_closed_stdout_is_an_error_not_a_signal(pyoci, bundle):
    """SIGPIPE is ignored from the start (in the core phase too), as CPython's main phase ignores it: output
    into a pipe nobody reads fails the call with a message instead of killing it."""
    cid = pyoci.new_id("pipe")
    pyoci("create", "--bundle", str(bundle(["sleep", "100"])), cid)
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([PYOCI, "--root", str(pyoci.root), "state", cid], stdout=w, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(w)
    assert proc.returncode == 1, proc  # not -SIGPIPE
    assert "Traceback" not in proc.stderr, proc.stderr


def test_a_closed_standard_stream_is_no_traceback(pyoci):
    """Started with stdout or stderr closed (as a careless caller may), the streams are None, as CPython makes
    them: output to a closed stream is dropped, the exit status stays the command's, no traceback."""
    base = [PYOCI, "--root", str(pyoci.root)]
    version = subprocess.run(base + ["--version"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             timeout=60, preexec_fn=lambda: os.close(1))
    assert (version.returncode, version.stderr) == (0, "")
    missing = subprocess.run(base + ["state", "nosuch"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, timeout=60, preexec_fn=lambda: os.close(2))
    assert (missing.returncode, missing.stdout) == (1, "")


def test_what_the_core_phase_lacks_completes_the_start_up(pyoci, bundle):
    """A command that needs more than the core phase gives (`ps`'s table runs ps(1) through subprocess, a
    module on disk; `update -r -` reads stdin) completes CPython's start-up on the way and works."""
    cid = pyoci.new_id("main")
    pyoci("create", "--bundle", str(bundle(["sleep", "100"])), cid)
    pyoci("start", cid)
    table = pyoci("ps", cid).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"] and len(table) == 2, table
    pyoci("update", "--resources", "-", cid, input=b'{"memory": {"limit": 67108864}}')
