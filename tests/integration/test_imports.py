"""The lifecycle commands import nothing heavy: each stdlib module below costs every call milliseconds (json
pulls re and enum, dataclasses pulls inspect and ast, signal and socket pull enum), and jsonschema ~100 ms.
pyoci reaches the same ends through _json (pyoci.jsonio), _signal, _socket (pyoci.linux.unixsock),
pyoci.record and a validator generated at build time. Each command runs as install.sh runs it (python -I -S)
under -X importtime, whose report names every module that was imported."""
from __future__ import annotations

import json
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


def heavy(report: str) -> list[str]:
    return sorted(imported(report) & HEAVY)


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
    """pyoci run as install.sh's launcher runs it, reporting its imports on stderr."""
    need_root()
    wrapper = tmp_path / "pyoci-importtime"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S -X importtime {PYOCI} "$@"\n')
    wrapper.chmod(0o755)
    rt = Runtime(tmp_path / "state", str(wrapper))
    yield rt
    rt.cleanup()


def call(rt: Runtime, *args: str) -> None:
    assert heavy(rt(*args).stderr) == [], f"pyoci {args[0]}"


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
