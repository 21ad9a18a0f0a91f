"""linux.rootfsPropagation with the rootfs a shared mount point of its own (as containerd and the CRI plugin
mount an image's overlay there), with pivot_root and with --no-pivot; and rshared propagation both ways
between the host and a container, as Kubernetes' Bidirectional mount propagation uses it."""
from __future__ import annotations

import os
import subprocess

import pytest

from conftest import wait_for

PROPAGATION_TAG = {
    "shared": "shared:", "rshared": "shared:", "slave": "master:", "rslave": "master:",
    "private": None, "rprivate": None, "unbindable": "unbindable", "runbindable": "unbindable",
}


def _umount_all(path: str) -> None:
    while subprocess.run(["umount", "-l", path], capture_output=True).returncode == 0:
        pass


@pytest.fixture
def shared_rootfs(tmp_path, rootfs):
    """A bind of the busybox rootfs on a dir of its own, made a shared mount (its host peer group)."""
    mnt = tmp_path / "shared-rootfs"
    mnt.mkdir()
    subprocess.run(["mount", "--bind", str(rootfs), str(mnt)], check=True)
    subprocess.run(["mount", "--make-shared", str(mnt)], check=True)
    yield mnt
    leaked = [m for m in _mounts() if m.startswith(str(mnt) + "/")]
    _umount_all(str(mnt))
    assert not leaked, f"the container's mounts reached the host: {leaked[:5]}"


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _root_line(mountinfo: str) -> str:
    return next(line for line in mountinfo.splitlines() if line.split()[4] == "/")


@pytest.mark.parametrize("pivot", [True, False], ids=["pivot_root", "no-pivot"])
@pytest.mark.parametrize("propagation", sorted(PROPAGATION_TAG))
def test_rootfs_propagation_on_a_shared_rootfs_mount(pyoci, bundle, shared_rootfs, propagation, pivot):
    def edit(c):
        c["root"]["path"] = str(shared_rootfs)
        c["linux"]["rootfsPropagation"] = propagation

    b = bundle(["cat", "/proc/self/mountinfo"], edit)
    proc = pyoci("run", *([] if pivot else ["--no-pivot"]), "--bundle", str(b), pyoci.new_id())
    root = _root_line(proc.stdout)
    tag = PROPAGATION_TAG[propagation]
    fields = root.split(" - ")[0].split()[6:]
    if tag is None:
        assert fields == [], root
    else:
        assert any(f.startswith(tag) for f in fields), root


def test_rshared_propagates_both_ways(pyoci, bundle, shared_rootfs, tmp_path):
    """A bind with rshared under rootfsPropagation rshared: a mount the container makes shows on the host,
    one the host makes shows in the container."""
    share = tmp_path / "share"
    (share / "fromc").mkdir(parents=True)
    (share / "fromh").mkdir()
    subprocess.run(["mount", "--bind", str(share), str(share)], check=True)
    subprocess.run(["mount", "--make-shared", str(share)], check=True)
    script = ("mount -t tmpfs fromc /mnt/share/fromc && touch /mnt/share/fromc/made-inside && "
              "i=0; while [ ! -e /mnt/share/fromh/made-outside ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
              "ls /mnt/share/fromh")

    def edit(c):
        c["root"]["path"] = str(shared_rootfs)
        c["linux"]["rootfsPropagation"] = "rshared"
        c["mounts"].append({"destination": "/mnt/share", "type": "bind", "source": str(share),
                            "options": ["rbind", "rshared"]})
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")

    b = bundle(["sh", "-c", script], edit)
    cid = pyoci.new_id()
    try:
        proc = subprocess.Popen(["pyoci", "--root", str(pyoci.root), "run", "--bundle", str(b), cid],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (share / "fromc" / "made-inside").exists() or proc.poll() is not None,
                 "the container's mount to reach the host")
        assert proc.poll() is None, proc.communicate()
        subprocess.run(["mount", "-t", "tmpfs", "fromh", str(share / "fromh")], check=True)
        (share / "fromh" / "made-outside").touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.split() == ["made-outside"], "the host's mount never reached the container"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for sub in ("fromc", "fromh", ""):
            _umount_all(os.path.join(share, sub) if sub else str(share))
