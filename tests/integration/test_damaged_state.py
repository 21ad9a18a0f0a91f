"""A damaged state file and a create killed midway: every command answers in one line, and `delete --force`
afterwards leaves no state, cgroup, process or mount behind."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import PYOCI, cgroup_dirs


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


def _wait_gone(marker: str, timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


DAMAGE = {
    "empty": lambda raw: "",
    "truncated-early": lambda raw: raw[:10],
    "truncated-late": lambda raw: raw[: len(raw) - 5],
    "garbage": lambda raw: "\x00\xff not json",
    "a list": lambda raw: "[1, 2]",
    "pid as a string": lambda raw: raw.replace('"pid": ', '"pid": "').replace(', "start_time"', '", "start_time"'),
    "cgroup as a list": lambda raw: raw.replace('"cgroup": {', '"cgroup": [{').replace('}, "hooks"', '}], "hooks"'),
    "unknown field": lambda raw: raw[:-1] + ', "extra": 1}',
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_state_file(pyoci, bundle, damage):
    marker = f"{7000 + len(damage)}.{os.urandom(3).hex()}"
    cid = pyoci.new_id("dmg")
    pyoci("run", "--detach", "--bundle", str(bundle(["sleep", marker])), cid)
    path = pyoci.root / cid / "state.json"
    raw = path.read_text()
    path.write_text(DAMAGE[damage](raw))
    for args in (["state", cid], ["kill", cid, "KILL"], ["list"], ["delete", cid]):
        r = pyoci(*args, check=False)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().split("\n")) <= 1, (args, r.stderr)
        if r.returncode:
            assert r.stderr.startswith(f"pyoci: {args[0]}"), r.stderr
    r = pyoci("delete", "--force", cid, check=False)
    assert r.returncode == 0, r.stderr
    assert not (pyoci.root / cid).exists()
    assert _wait_gone(marker) == []
    assert cgroup_dirs(cid) == []


@pytest.mark.parametrize("delay_ms", [0, 10, 25, 40, 60, 80, 100, 130, 170, 250])
def test_create_killed_midway_then_delete_force(pyoci, bundle, delay_ms):
    marker = f"{8000 + delay_ms}.{os.urandom(3).hex()}"
    cid = pyoci.new_id("kill")
    b = bundle(["sleep", marker])
    proc = subprocess.Popen([PYOCI, "--root", str(pyoci.root), "create", "--bundle", str(b), cid],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = pyoci("delete", "--force", cid, check=False)
    assert r.returncode == 0, r.stderr
    assert not (pyoci.root / cid).exists()
    assert _wait_gone(marker) == []
    assert cgroup_dirs(cid) == []
    with open("/proc/self/mountinfo") as f:
        assert str(b) not in f.read()
