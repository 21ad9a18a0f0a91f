"""Property, as root on the real kernel: `pyoci create` of a mutated config either creates the container
(which `delete --force` then removes) or fails with one line and a non-zero exit; either way no state
directory, cgroup or mount is left behind.

The mutations stay away from what would reach outside the test: root.path stays the test's own rootfs copy,
the mount namespace stays (nothing is mounted on the host), no cgroupsPath (nothing made outside pyoci's
own cgroups) and no hooks (no host commands)."""
from __future__ import annotations

import glob
import json
import subprocess
import uuid

from fuzzing import SEEDS, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _confine(doc: object, rootfs: str) -> object:
    if not isinstance(doc, dict):
        return doc
    doc.pop("hooks", None)
    if isinstance(doc.get("root"), dict):
        doc["root"]["path"] = rootfs
    linux = doc.get("linux")
    if isinstance(linux, dict):
        linux.pop("cgroupsPath", None)
        namespaces = linux.get("namespaces")
        if isinstance(namespaces, list):
            linux["namespaces"] = [ns for ns in namespaces if not (isinstance(ns, dict) and ns.get("type") == "mount")]
            linux["namespaces"].append({"type": "mount"})
    return doc


def _runnable(seed: dict) -> dict:
    doc = json.loads(json.dumps(seed))
    doc["process"].update(terminal=False, args=["true"])
    return doc


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), rounds=st.integers(1, 2), data=st.data())
def test_mutated_configs_create_or_fail_in_one_line_leaving_nothing(pyoci, open_rootfs, tmp_path, seed, rounds, data):
    doc = _runnable(SEEDS[seed])
    for _ in range(rounds):
        doc = mutate(data, doc)
    doc = _confine(doc, open_rootfs)
    bundle = tmp_path / uuid.uuid4().hex[:8]
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(doc))
    cid = f"rlfz{uuid.uuid4().hex[:12]}"
    out = pyoci("create", "--bundle", str(bundle), cid, check=False, timeout=30, stdin=subprocess.DEVNULL)
    if out.returncode == 0:
        pyoci("delete", "--force", cid)
    else:
        lines = [line for line in out.stderr.splitlines() if not line.startswith(f"pyoci: create {cid}: warning: ")]
        assert len(lines) == 1 and lines[0].startswith(f"pyoci: create {cid}: "), out.stderr
        assert "internal error" not in out.stderr, out.stderr
    assert not (pyoci.root / cid).exists()
    assert not glob.glob(f"/sys/fs/cgroup/*/pyoci-{cid}")  # where a config without cgroupsPath puts it
    with open("/proc/self/mountinfo") as f:
        assert open_rootfs not in f.read()
