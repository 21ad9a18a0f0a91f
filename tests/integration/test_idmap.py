"""Idmapped bind mounts (mounts[i].uidMappings/gidMappings, "idmap"/"ridmap") on the real kernel: the
files keep their owner on disk and show the mapped one inside."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import need_root

HOST_UID = 1000
SUBIDS = [{"containerID": 0, "hostID": 200000, "size": 65536}]
LIST = "ls -lnd /mnt /mnt/f | awk '{print $3, $4}'; touch /mnt/made"


@pytest.fixture(params=["ext4", "tmpfs"])
def owned_dir(request) -> Path:
    """A host directory and file owned by uid/gid 1000, on the filesystem the test names."""
    need_root()
    base = {"ext4": tempfile.gettempdir(), "tmpfs": "/dev/shm"}[request.param]
    with open("/proc/self/mountinfo") as f:
        if request.param == "tmpfs" and " /dev/shm " not in f.read():
            pytest.skip("no tmpfs at /dev/shm")
    d = Path(tempfile.mkdtemp(prefix="pyoci-idmap-", dir=base))
    d.chmod(0o755)
    (d / "f").write_text("x")
    for p in (d, d / "f"):
        os.chown(p, HOST_UID, HOST_UID)
    yield d
    shutil.rmtree(d)


def _mount(source: Path, options: list[str], maps: list[dict] | None) -> dict:
    m = {"destination": "/mnt", "type": "bind", "source": str(source), "options": options}
    if maps is not None:
        m["uidMappings"] = m["gidMappings"] = maps
    return m


def _userns(c: dict, rootfs: str) -> None:
    c["root"]["path"] = rootfs
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = c["linux"]["gidMappings"] = SUBIDS
    c["mounts"] = [m for m in c["mounts"] if m["type"] not in ("cgroup", "cgroup2")]


def _run(pyoci, bundle, edit, script: str = LIST) -> str:
    b = bundle(["sh", "-c", script], edit)
    return pyoci("run", "--bundle", str(b), pyoci.new_id("rlidm")).stdout


def test_without_a_user_namespace_the_mount_shows_the_mapped_owner(pyoci, bundle, owned_dir):
    maps = [{"containerID": HOST_UID, "hostID": 0, "size": 1}]
    out = _run(pyoci, bundle, lambda c: c["mounts"].append(_mount(owned_dir, ["rbind"], maps)))
    assert out.split("\n")[:2] == ["0 0", "0 0"]
    # written by root through the mount, owned by 1000 on disk
    assert (owned_dir / "made").stat().st_uid == HOST_UID and (owned_dir / "made").stat().st_gid == HOST_UID


def test_in_a_user_namespace_the_container_root_owns_it(pyoci, bundle, owned_dir, open_rootfs):
    maps = [{"containerID": HOST_UID, "hostID": SUBIDS[0]["hostID"], "size": 1}]

    def edit(c):
        _userns(c, open_rootfs)
        c["mounts"].append(_mount(owned_dir, ["rbind", "ridmap"], maps))

    out = _run(pyoci, bundle, edit)
    assert out.split("\n")[:2] == ["0 0", "0 0"]
    assert (owned_dir / "made").stat().st_uid == HOST_UID


def test_idmap_alone_takes_the_containers_mappings(pyoci, bundle, owned_dir, open_rootfs):
    """Without mappings of its own the mount uses the container's: on-disk 1000 is 1000 inside, where
    a plain bind would show the overflow id."""
    def edit(c):
        _userns(c, open_rootfs)
        c["mounts"].append(_mount(owned_dir, ["rbind", "idmap"], None))

    # (the container's root has no CAP_DAC_OVERRIDE by default: it does not write to 1000's directory)
    out = _run(pyoci, bundle, edit, "ls -lnd /mnt /mnt/f | awk '{print $3, $4}'")
    assert out.split("\n")[:2] == [f"{HOST_UID} {HOST_UID}", f"{HOST_UID} {HOST_UID}"]

    def plain(c):
        _userns(c, open_rootfs)
        c["mounts"].append(_mount(owned_dir, ["rbind"], None))

    assert _run(pyoci, bundle, plain, "ls -lnd /mnt | awk '{print $3, $4}'") == "65534 65534\n"


def test_a_filesystem_without_idmap_support_is_named(pyoci, bundle):
    maps = [{"containerID": 0, "hostID": 1000, "size": 1}]
    b = bundle(["true"], lambda c: c["mounts"].append(_mount(Path("/proc/sys"), ["rbind"], maps)))
    cid = pyoci.new_id("rlidm")
    out = pyoci("create", "--bundle", str(b), cid, check=False)
    assert out.returncode == 1
    n = len(json.loads((b / "config.json").read_text())["mounts"]) - 1
    assert out.stderr == (f"pyoci: create {cid}: mounts[{n}] (/mnt): idmapped mount of /proc/sys: its filesystem "
                          "does not support idmapped mounts (mount_setattr): Invalid argument\n")
    assert not (pyoci.root / cid).exists()


def test_features_advertise_idmap(pyoci):
    feats = json.loads(pyoci("features").stdout)
    assert feats["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(feats["mountOptions"])
