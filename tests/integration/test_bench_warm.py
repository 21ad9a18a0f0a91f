"""bench/warm.py runs (its figures are read by people, never asserted: performance is not a timed test) and
leaves nothing behind: a bench that has rotted unnoticed measures nothing."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

from conftest import PYOCI, REPO, need_root


def test_warm_bench_runs_and_cleans_up(tmp_path):
    need_root()
    out = tmp_path / "warm.json"
    result = subprocess.run([sys.executable, str(REPO / "bench" / "warm.py"), "--runs", "2", "--json", str(out)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": f"{os.path.dirname(PYOCI)}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:4]] == ["create", "start", "delete"]
    figures = json.loads(out.read_text())
    assert set(figures) == {"create", "start", "delete", "command"}
    assert all(f["median"] > 0 and 0 <= f.get("user_share", 0) <= 1 for f in figures.values())
    left = [p for depth in ("", "*/", "*/*/", "*/*/*/") for p in glob.glob(f"/sys/fs/cgroup/{depth}pyoci-warm-*")]
    assert left == [], "cgroups left"
