"""The cgroup v2 set on a real cgroup v2 kernel (this host is hybrid): tests/vm/run-v2.sh boots Debian's kernel
with cgroup v1 off under QEMU (software emulation; prepared by tests/vm/prepare.sh from install.sh) and runs
tests/integration/test_cgroups_v2.py, test_cgroup_devices.py, test_cgroups.py and test_spec_coverage.py inside
against the pyoci installed here. A few minutes: the boot takes ~10 s, each pyoci call inside a second or
more."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import REPO, need_root

VM = os.environ.get("PYOCI_VM", "/opt/pyoci/vm")


@pytest.mark.timeout(1900)  # the guest's own limit is 1800 s
def test_the_cgroup_v2_set_passes_in_a_cgroup_v2_guest():
    need_root()
    missing = [p for p in (f"{VM}/vng/bin/vng", f"{VM}/kernel/boot/vmlinux") if not os.path.exists(p)]
    missing += [] if shutil.which("qemu-system-x86_64") else ["qemu-system-x86_64"]
    if missing:
        message = f"no cgroup v2 guest prepared (tests/vm/prepare.sh): missing {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)  # install.sh prepares it: in CI its absence is a failure, not a skip
        pytest.skip(message)
    # Its own session: a timeout takes QEMU down with the script (killing bash alone left QEMU running; TERM
    # lets run-v2.sh remove its scratch directory), and fails with what the guest printed so far.
    proc = subprocess.Popen(["bash", str(REPO / "tests" / "vm" / "run-v2.sh")],
                            env={**os.environ, "PYTHON": sys.executable}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"the guest did not finish in 1800 s:\n{out[-20000:]}")
    if "guest: Linux" not in out:
        pytest.skip(f"QEMU could not boot the guest here: {out[-2000:]}")
    assert proc.returncode == 0, out[-20000:]
    print(out[-3000:])
