"""The same bundle under runc and pyoci: what the spec fixes must look the same from inside."""
from __future__ import annotations

import re

import pytest

PROBE = ("id; hostname; echo $$; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; ulimit -n; umask; pwd; "
         "ls /dev; for f in /proc/timer_list /proc/keys /sys/firmware; do stat -c '%n %F' $f; done; "
         "touch /rootfile 2>/dev/null || echo root-ro; ls -1 /proc/self/fd | wc -l; "
         "grep -oE ' (/proc|/dev|/dev/pts|/dev/shm|/dev/mqueue|/sys) [^ ]+' /proc/self/mountinfo | sort")


def normalize(text: str) -> str:
    return re.sub(r"Seccomp:\s+\d+\n", "", text)  # runc's default profile is not part of the bundle


@pytest.mark.parametrize("edit", [
    None,
    lambda c: c["process"].update(user={"uid": 1000, "gid": 1000, "additionalGids": [10]}, cwd="/tmp"),
    lambda c: c["process"].update(capabilities={k: ["CAP_CHOWN", "CAP_SYS_ADMIN"] for k in
                                               ("bounding", "effective", "permitted", "inheritable")}),
])
def test_same_view_as_runc(pyoci, runc, bundle, edit):
    b = bundle(["sh", "-c", PROBE], edit)
    ours = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    theirs = runc("run", "--bundle", str(b), runc.new_id(), check=False)
    assert (ours.returncode, normalize(ours.stdout)) == (theirs.returncode, normalize(theirs.stdout))
