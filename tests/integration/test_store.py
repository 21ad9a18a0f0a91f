"""The overlay layer store against the real kernel: images built here are imported, run, changed, committed
and exported; every check of a container's view is made from inside it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PYOCI, need_root
from imagebuilder import (dir_layer, entry, image_config, opaque, tar_layer, whiteout, write_docker_archive,
                          write_oci, write_oci_archive)


class StoreCli:
    """pyoci with its own --store and --root; teardown deletes its containers and checks nothing is mounted."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = tmp / "store"
        self.root = tmp / "state"
        self.ids: list[str] = []
        self.env: dict[str, str] | None = None  # the environment of every call (None: this process's)

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("env", self.env)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.run([PYOCI, "--store", str(self.store), "--root", str(self.root), *args],
                                  stdout=out, stderr=err, timeout=timeout, **kw).returncode
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(args, code, out.read().decode(), err.read().decode())
        if check and code != 0:
            raise AssertionError(f"{' '.join(args)} failed ({code}): {proc.stderr}")
        return proc

    def run(self, image: str, script: str) -> str:
        """Runs sh -c script in a new container of image (bundle under tmp); returns its output."""
        bundle = self.bundle(image, "sh", "-c", script)
        cid = self.new_id()
        return self("run", "--bundle", str(bundle), cid).stdout

    def bundle(self, image: str, *args: str) -> Path:
        bundle = Path(tempfile.mkdtemp(dir=self.tmp, prefix="bundle"))
        self("bundle", "create", image, str(bundle), *args)
        return bundle

    def new_id(self) -> str:
        cid = f"st{os.urandom(6).hex()}"
        self.ids.append(cid)
        return cid

    def layers(self) -> set[str]:
        """The image layers stored (container layers of bundles left out)."""
        return {r["id"] for r in json.loads(self("image", "layers", "--format", "json").stdout) if r["kind"] == "image"}

    def images(self) -> list[dict]:
        return json.loads(self("image", "list", "--format", "json").stdout)

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run([PYOCI, "--root", str(self.root), "delete", "--force", cid], capture_output=True)


def _mounted_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


@pytest.fixture
def cli(tmp_path) -> StoreCli:
    need_root()
    c = StoreCli(tmp_path)
    yield c
    c.cleanup()
    assert not _mounted_under(tmp_path), "a container layer stayed mounted"


@pytest.fixture(scope="session")
def base(rootfs) -> bytes:
    """busybox as one layer tar."""
    return dir_layer(rootfs)


def _import(cli: StoreCli, path: Path, *extra: str) -> str:
    return cli("image", "import", *extra, str(path)).stdout.strip()


def test_layer_stack_seen_from_inside(cli, base, tmp_path):
    long_name = "d" * 120 + "/" + "f" * 200
    l1 = tar_layer([
        entry("etc/motd", data=b"one\n"), entry("keep", "dir"), entry("keep/a", data=b"a\n"),
        entry("gone", data=b"x"), entry("gonedir", "dir"), entry("gonedir/f", data=b"f"),
        entry("opq", "dir"), entry("opq/old", data=b"old"), entry("was-dir", "dir"), entry("was-dir/x", data=b"x"),
        entry("was-file", data=b"file"), entry("link", "symlink", target="/etc/motd"),
        entry("hard", "hardlink", target="etc/motd"), entry("h1", data=b"h"), entry("keep/h2", "hardlink", target="h1"),
        entry("d" * 120, "dir"), entry(long_name, data=b"long\n"),
        entry("suid", data=b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1001, mtime=1234567890),
        entry("null2", "char", mode=0o666, dev=(1, 3)), entry("fifo", "fifo"),
        entry("attr", data=b"x", xattrs={"user.pyoci": b"value\xff"}),
    ])
    l2 = tar_layer([
        entry("etc/motd", data=b"two\n"), whiteout("gone"), whiteout("gonedir"), opaque("opq"),
        entry("opq/new", data=b"new"), whiteout("was-dir"), entry("was-dir", data=b"now a file\n"),
        whiteout("was-file"), entry("was-file", "dir"), entry("was-file/inside", data=b"in\n"),
        entry("keep/b", data=b"b\n"),
    ])
    image = _import(cli, write_oci(tmp_path / "img", [base, l1, l2]), "--tag", "stack")
    out = cli.run("stack", f"""
        cat /etc/motd /hard /link; ls /keep; ls /opq; cat /was-dir; cat /was-file/inside
        for p in /gone /gonedir; do [ -e $p ] && echo "$p exists" || echo "$p absent"; done
        cat /{long_name}; stat -c %Y /{"d" * 120}; stat -c '%a %u %g %Y' /suid; stat -c '%F %t %T' /null2; stat -c %F /fifo
        [ "$(stat -c %i /h1)" = "$(stat -c %i /keep/h2)" ] && echo same-inode || echo other-inode
    """)
    assert out.split("\n") == [
        "two", "one", "two", "a", "b", "h2", "new", "now a file", "in", "/gone absent", "/gonedir absent", "long", "1600000000",
        "4755 1000 1001 1234567890", "character special file 1 3", "fifo", "same-inode", ""]
    # the hard link lives in l1, the layer that held both names; l2's change copied /etc/motd alone
    layers = json.loads(cli("image", "inspect", image).stdout)["layers"]
    l1_dir = Path(layers[1]["dir"]) / "diff"
    assert os.stat(l1_dir / "hard").st_ino == os.stat(l1_dir / "etc/motd").st_ino
    assert os.getxattr(l1_dir / "attr", "user.pyoci") == b"value\xff"
    l2_dir = Path(layers[2]["dir"]) / "diff"
    assert os.getxattr(l2_dir / "opq", "trusted.overlay.opaque") == b"y"
    assert os.stat(l2_dir / "gone", follow_symlinks=False).st_rdev == 0


def test_writes_copy_up_and_containers_share_lower_layers(cli, base, tmp_path):
    layer = tar_layer([entry("data", "dir"), entry("data/file", data=b"original\n")])
    _import(cli, write_oci(tmp_path / "img", [base, layer]), "--tag", "shared")
    lower = json.loads(cli("image", "inspect", "shared").stdout)["layers"][1]["dir"] + "/diff/data/file"
    before = hashlib.sha256(Path(lower).read_bytes()).hexdigest()
    a, b = cli.bundle("shared", "sh", "-c", "echo changed >> /data/file; echo mine > /only-a; cat /data/file"), \
        cli.bundle("shared", "sh", "-c", "cat /data/file; ls /only-a 2>&1 || true")
    assert cli("run", "-b", str(a), cli.new_id()).stdout == "original\nchanged\n"
    assert cli("run", "-b", str(b), cli.new_id()).stdout.startswith("original\nls: /only-a")
    assert hashlib.sha256(Path(lower).read_bytes()).hexdigest() == before
    assert cli("bundle", "diff", str(a)).stdout.split("\n") == ["C /data", "C /data/file", "A /only-a", ""]
    assert cli("bundle", "diff", str(b)).stdout == ""


@pytest.mark.parametrize("how", ["gzip", "zstd", None])
def test_formats_and_compressions_import_and_run(cli, base, tmp_path, how):
    layer = tar_layer([entry("hello", data=b"hello\n")])
    layout = write_oci(tmp_path / "img", [base, layer], how=how)
    sources = {"oci": layout, "oci-archive": write_oci_archive(tmp_path / "img.tar", layout),
               "docker": write_docker_archive(tmp_path / "docker.tar", [base, layer], "docker/img:1")}
    for kind, path in sources.items():
        image = _import(cli, path, *(["--tag", f"fmt/{kind}"] if kind != "docker" else []))
        assert cli.run(f"fmt/{kind}" if kind != "docker" else "docker/img:1", "cat /hello") == "hello\n"
        assert image.startswith("sha256:")
    assert len(cli.layers()) == 2, "the same layers are stored once, whatever the source's format"
    assert "docker/img:1" in {t for i in cli.images() for t in i["tags"]}


def test_shared_base_layers_are_stored_once(cli, base, tmp_path):
    first = write_oci(tmp_path / "a", [base, tar_layer([entry("a", data=b"a")])])
    second = write_oci(tmp_path / "b", [base, tar_layer([entry("b", data=b"b")])])
    _import(cli, first, "--tag", "one")
    used = cli.layers()
    before = os.stat(cli.store / "overlay2" / sorted(used)[0]).st_ino
    _import(cli, second, "--tag", "two")
    assert len(cli.layers()) == 3
    assert os.stat(cli.store / "overlay2" / sorted(used)[0]).st_ino == before


def _store_is_empty(cli: StoreCli) -> None:
    assert cli.layers() == set()
    assert os.listdir(cli.store / "blobs" / "sha256") == []
    assert os.listdir(cli.store / "tmp") == []
    assert os.listdir(cli.store / "overlay2" / "l") == []
    assert cli.images() == []


def test_corrupt_blob_is_refused_and_nothing_stored(cli, base, tmp_path):
    layout = write_oci(tmp_path / "img", [base, tar_layer([entry("x", data=b"x" * 4096)])], how=None)
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    blob = json.loads((layout / "blobs/sha256" / manifest[7:]).read_text())["layers"][1]["digest"]
    path = layout / "blobs/sha256" / blob[7:]
    data = bytearray(path.read_bytes())
    data[700] ^= 1
    path.write_bytes(bytes(data))
    r = cli("image", "import", str(layout), check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"pyoci: image import: layer 1 ({blob}): blob content does not match its digest"
    _store_is_empty(cli)


def test_wrong_diff_id_is_refused_and_nothing_stored(cli, base, tmp_path):
    layer = tar_layer([entry("x", data=b"x")])
    config = image_config([base, layer])
    config["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
    r = cli("image", "import", str(write_oci(tmp_path / "img", [base, layer], config)), check=False)
    assert r.returncode == 1 and "does not match diff_id sha256:000" in r.stderr
    assert len(r.stderr.strip().split("\n")) == 1
    _store_is_empty(cli)


HOSTILE = {
    "dotdot": ([entry("../escaped", data=b"x")], "'..' in a layer path"),
    "absolute": ([entry("/escaped", data=b"x")], "absolute path in a layer"),
    "symlink-parent": ([entry("evil", "symlink", target="HOST"), entry("evil/escaped", data=b"x")],
                       "a parent in the layer is a symlink"),
    "relative-symlink-parent": ([entry("evil", "symlink", target="../../../../../../../../HOST"),
                                 entry("evil/escaped", data=b"x")], "a parent in the layer is a symlink"),
    "hardlink-out": ([entry("evil", "hardlink", target="../../../../../../HOST/target")], "'..' in a layer path"),
    "whiteout-out": ([entry("a/.wh...", data=b"")], ""),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_layers_cannot_write_outside_their_directory(cli, base, tmp_path, case):
    host = tmp_path / "host"
    host.mkdir()
    (host / "target").write_text("host")
    entries, message = HOSTILE[case]
    for ti, _ in entries:
        ti.linkname = ti.linkname.replace("HOST", str(host).lstrip("/") if ti.linkname.startswith("../") else str(host))
    r = cli("image", "import", str(write_oci(tmp_path / "img", [base, tar_layer(entries)])), check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("pyoci: image import: layer 1 (") and message in r.stderr
    assert sorted(os.listdir(host)) == ["target"] and (host / "target").read_text() == "host"
    assert not (tmp_path / "escaped").exists() and not (cli.store / "escaped").exists()
    _store_is_empty(cli)


def test_concurrent_imports_share_layers(cli, base, tmp_path):
    paths = [write_oci(tmp_path / f"img{i}", [base, tar_layer([entry(f"f{i}", data=b"x")])]) for i in range(2)]
    procs = [subprocess.Popen([PYOCI, "--store", str(cli.store), "image", "import", "--tag", f"c/{i}", str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i, p in enumerate(paths)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], results
    assert len(cli.layers()) == 3
    assert sorted(t for i in cli.images() for t in i["tags"]) == ["c/0:latest", "c/1:latest"]
    assert os.listdir(cli.store / "tmp") == []
    assert len(os.listdir(cli.store / "overlay2" / "l")) == 3
    assert cli.run("c/1", "cat /f1") == "x"


def test_image_of_128_layers_mounts_in_one_call(cli, base, tmp_path):
    layers = [base] + [tar_layer([entry(f"f{i:03d}", data=f"{i}\n".encode())]) for i in range(127)]
    _import(cli, write_oci(tmp_path / "img", layers, how=None), "--tag", "tall")
    assert cli.run("tall", "cat /f000 /f063 /f126") == "0\n63\n126\n"


def test_overlay_is_mounted_by_create_and_removed_by_delete(cli, base, tmp_path):
    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "m")
    bundle = cli.bundle("m", "true")
    merged = json.loads((bundle / "config.json").read_text())["root"]["path"]
    cid = cli.new_id()
    cli("create", "--bundle", str(bundle), cid)
    assert merged in _mounted_under(cli.store)
    again = cli("create", "--bundle", str(bundle), cli.new_id(), check=False)
    assert again.returncode == 1 and "mounted already" in again.stderr
    cli("delete", "--force", cid)
    assert _mounted_under(cli.store) == []
    # a create that fails after the mount takes it down again
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["args"] = ["/no/such/binary"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    failed = cli("create", "--bundle", str(bundle), cli.new_id(), check=False)
    assert failed.returncode == 1 and _mounted_under(cli.store) == []


def test_commit_export_and_the_other_tools_agree(cli, base, tmp_path):
    if not (shutil.which("umoci") and shutil.which("skopeo")):
        pytest.skip("umoci and skopeo are needed")
    _import(cli, write_oci(tmp_path / "img", [base, tar_layer([entry("old", data=b"old"), entry("dir", "dir"),
                                                                  entry("dir/f", data=b"f")])]), "--tag", "base")
    bundle = cli.bundle("base", "sh", "-c", "rm /old; rm -r /dir; mkdir /dir; echo n > /dir/new; "
                                            "echo l > /long-$(printf 'x%.0s' $(seq 150)); ln /dir/new /hard")
    cli("run", "-b", str(bundle), cli.new_id())
    image = cli("bundle", "commit", "--tag", "committed", "-m", "test", str(bundle)).stdout.strip()
    cli("image", "export", "committed", f"oci:{tmp_path}/out:v1")
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path}/out:v1", str(tmp_path / "umoci")], check=True,
                   capture_output=True)
    subprocess.run(["skopeo", "copy", f"oci:{tmp_path}/out:v1", f"oci:{tmp_path}/copy:v1"], check=True,
                   capture_output=True)
    # pyoci's own view of the committed image: a fresh bundle's overlay, mounted by create
    view = cli.bundle("committed", "true")
    cid = cli.new_id()
    cli("create", "--bundle", str(view), cid)
    merged = Path(json.loads((view / "config.json").read_text())["root"]["path"])
    # (less the mount points of /etc/hostname, hosts, resolv.conf, which the bundle's init layer holds)
    mine = {k: v for k, v in _tree(merged).items() if k not in ("etc/hostname", "etc/hosts", "etc/resolv.conf")}
    assert mine == _tree(tmp_path / "umoci" / "rootfs")
    cli("delete", "--force", cid)
    assert image == json.loads(cli("image", "inspect", "committed").stdout)["id"]
    # and the copy skopeo made imports back as the same image
    assert _import(cli, tmp_path / "copy") == image


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            link = os.readlink(p) if os.path.islink(p) else ""
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size if not os.path.isdir(p)
                                             else 0, link, int(st.st_mtime) if not os.path.isdir(p) else 0)
    return out


def test_images_from_umoci_and_skopeo_import_and_run(cli, rootfs, tmp_path):
    if not (shutil.which("umoci") and shutil.which("skopeo")):
        pytest.skip("umoci and skopeo are needed")
    layout = f"{tmp_path}/umoci-img"
    for cmd in (["umoci", "init", "--layout", layout], ["umoci", "new", "--image", f"{layout}:bb"],
                ["umoci", "unpack", "--image", f"{layout}:bb", f"{tmp_path}/ub"]):
        subprocess.run(cmd, check=True, capture_output=True)
    shutil.rmtree(f"{tmp_path}/ub/rootfs")
    shutil.copytree(rootfs, f"{tmp_path}/ub/rootfs", symlinks=True)
    Path(f"{tmp_path}/ub/rootfs/made-by").write_text("umoci\n")
    subprocess.run(["umoci", "repack", "--image", f"{layout}:bb", f"{tmp_path}/ub"], check=True, capture_output=True)
    subprocess.run(["umoci", "config", "--image", f"{layout}:bb", "--config.cmd", "sh"], check=True,
                   capture_output=True)
    _import(cli, Path(layout), "--ref", "bb", "--tag", "from/umoci")
    assert cli.run("from/umoci", "cat /made-by") == "umoci\n"
    subprocess.run(["skopeo", "copy", f"oci:{layout}:bb", f"docker-archive:{tmp_path}/d.tar:from/skopeo:1"],
                   check=True, capture_output=True)
    _import(cli, tmp_path / "d.tar")
    assert cli.run("from/skopeo:1", "cat /made-by") == "umoci\n"


def test_remove_and_collect(cli, base, tmp_path):
    _import(cli, write_oci(tmp_path / "a", [base, tar_layer([entry("a", data=b"a")])]), "--tag", "gc/a")
    _import(cli, write_oci(tmp_path / "b", [base, tar_layer([entry("b", data=b"b")])]), "--tag", "gc/b")
    bundle = cli.bundle("gc/a", "true")
    refused = cli("image", "rm", "gc/a", check=False)
    assert refused.returncode == 1 and f"used by bundle {bundle}" in refused.stderr
    cli("image", "tag", "gc/b", "gc/b2")
    assert cli("image", "rm", "gc/b").stdout == "untagged gc/b:latest\n"
    out = cli("image", "rm", "gc/b2").stdout
    assert out.startswith("deleted sha256:") and out.count("removed layer") == 1
    assert len(cli.layers()) == 2  # base and a's layer (and the bundle's container layer)
    cli("bundle", "rm", str(bundle))
    assert not bundle.exists()
    cli("image", "rm", "gc/a")
    assert cli("image", "prune").stdout == ""
    _store_is_empty(cli)


def test_image_run_in_one_line(cli, base, tmp_path):
    config = image_config([base], Entrypoint=["/bin/sh", "-c"], Cmd=["echo default"], WorkingDir="/tmp",
                          User="nobody", Env=["PATH=/bin", "GREETING=hi"], Labels={"org.example": "yes"})
    _import(cli, write_oci(tmp_path / "img", [base], config), "--tag", "runner")
    r = cli("image", "run", "--rm", "runner", check=False)
    assert (r.returncode, r.stdout) == (0, "default\n")
    r = cli("image", "run", "--rm", "runner", 'echo $GREETING $(id -u):$(id -g) $(pwd); exit 4', check=False)
    assert (r.returncode, r.stdout) == (4, "hi 65534:65534 /tmp\n")
    assert cli("bundle", "list", "--format", "json").stdout.strip() == "[]"
    r = cli("image", "run", "--name", "kept" + os.urandom(3).hex(), "runner", "echo kept")
    name = json.loads(cli("bundle", "list", "--format", "json").stdout)[0]["bundle"].rsplit("/", 1)[1]
    assert json.loads((cli.store / "bundles" / name / "config.json").read_text())["annotations"]["org.example"] == "yes"
    cli("bundle", "rm", name)
    assert cli("bundle", "list", "--format", "json").stdout.strip() == "[]"


def test_info_describes_the_store(cli, base, tmp_path):
    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "i")
    info = json.loads(cli("info", "--format", "json").stdout)
    assert info["Storage Driver"] == "overlay2" and info["Supports d_type"] is True
    assert info["Backing Filesystem"] in ("extfs", "xfs", "btrfs", "tmpfs")
    assert (info["Images"], info["Layers"], info["Bundles"]) == (1, 1, 0)
    assert info["Disk Used"] > len(base) // 2
    assert "Native Overlay Diff: " in cli("info").stdout


def test_progress_only_on_a_terminal(cli, base, tmp_path):
    import pty

    layout = write_oci(tmp_path / "img", [base])
    quiet = cli("image", "import", str(layout))
    assert quiet.stderr == ""
    cli("image", "rm", quiet.stdout.strip())
    master, slave = pty.openpty()
    try:
        subprocess.run([PYOCI, "--store", str(cli.store), "image", "import", str(layout)], stderr=slave,
                       stdout=subprocess.DEVNULL, check=True, timeout=60)
        shown = os.read(master, 65536).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert "layer 1/1" in shown and "MiB" in shown


def test_store_on_a_filesystem_without_d_type_is_refused(cli, base, tmp_path):
    """ext4 made without the filetype feature leaves d_type unknown, as xfs with ftype=0 does."""
    image = tmp_path / "nodtype.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-O", "^filetype,^has_journal", str(image)], check=True)
    mnt = tmp_path / "nodtype"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        r = subprocess.run([PYOCI, "--store", str(mnt / "store"), "image", "import",
                            str(write_oci(tmp_path / "img", [base]))], capture_output=True, text=True)
        assert r.returncode == 1
        assert r.stderr == (f"pyoci: image import: the store at {mnt}/store is on extfs without d_type support "
                            "(xfs needs ftype=1): overlay cannot work there; use --store on another filesystem\n")
        info = json.loads(subprocess.run([PYOCI, "--store", str(mnt / "store"), "info", "--format", "json"],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["Supports d_type"] is False
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_image_run_with_a_terminal(cli, base, tmp_path):
    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "tty")
    r = cli("image", "run", "--rm", "-t", "tty", "sh", "-c", "tty; echo $TERM; exit 5", check=False,
            stdin=open("/dev/null"))
    assert r.returncode == 5
    assert r.stdout.replace("\r", "").split("\n")[:2] == ["/dev/pts/0", "xterm"]


def test_create_killed_midway_leaves_no_overlay_after_delete_force(cli, base, tmp_path):
    import signal
    import time

    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "killed")
    bundle = cli.bundle("killed", "sleep", "1000")
    for delay_ms in (5, 20, 40, 70, 100, 150):
        cid = cli.new_id()
        proc = subprocess.Popen([PYOCI, "--root", str(cli.root), "create", "--bundle", str(bundle), cid],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay_ms / 1000)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cli("delete", "--force", cid)
        assert _mounted_under(cli.store) == [], f"killed after {delay_ms} ms"


def test_implied_parent_directories_keep_the_lower_metadata(cli, base, tmp_path):
    """A layer that adds /root/.config/app/settings with no entry for /root leaves /root 0700 (issue 16):
    the implied parent takes mode, owner, xattrs and times from the layers below; 0755 root where none is."""
    l1 = tar_layer([entry("root", "dir", mode=0o700, mtime=1_500_000_000),
                    entry("srv", "dir", mode=0o750, uid=1000, gid=1001, mtime=1_400_000_000,
                          xattrs={"user.tag": b"kept"})])
    l2 = tar_layer([entry("root/.config/app/settings", data=b"x\n"), entry("srv/data", data=b"d\n")])
    image = _import(cli, write_oci(tmp_path / "img", [base, l1, l2]), "--tag", "implied")
    out = cli.run("implied", "stat -c '%a %u %g %Y' /root /srv /root/.config /root/.config/app")
    assert out.split("\n")[:2] == ["700 0 0 1500000000", "750 1000 1001 1400000000"]
    assert [line.split()[:3] for line in out.split("\n")[2:4]] == [["755", "0", "0"]] * 2
    top = Path(json.loads(cli("image", "inspect", image).stdout)["layers"][2]["dir"]) / "diff"
    assert os.getxattr(top / "srv", "user.tag") == b"kept"


def test_commit_refuses_names_an_oci_layer_reserves(cli, base, tmp_path):
    """A container that writes /etc/.wh.passwd must not delete /etc/passwd from the image its commit makes
    (issue 16): diff shows the plain files, commit refuses them in one line, nothing is stored."""
    _import(cli, write_oci(tmp_path / "img", [base, tar_layer([entry("etc/passwd", data=b"root:x:0:0::/:/bin/sh\n"),
                                                                 entry("keep", "dir"), entry("keep/f", data=b"f")])]),
            "--tag", "wh")
    bundle = cli.bundle("wh", "sh", "-c", "touch /etc/.wh.passwd /keep/.wh..wh..opq")
    cli("run", "-b", str(bundle), cli.new_id())
    assert cli("bundle", "diff", str(bundle)).stdout.split("\n") == [
        "C /etc", "A /etc/.wh.passwd", "C /keep", "A /keep/.wh..wh..opq", ""]
    before = cli.images()
    r = cli("bundle", "commit", "--tag", "evil", str(bundle), check=False)
    assert r.returncode == 1
    assert r.stderr == ("pyoci: bundle commit: the container layer holds names an OCI layer reserves for whiteouts "
                        "(.wh.*): /etc/.wh.passwd, /keep/.wh..wh..opq\n")
    assert cli.images() == before and os.listdir(cli.store / "tmp") == []


def test_whiteouts_apply_to_lower_layers_only(cli, base, tmp_path):
    """issue 19 #1: a layer holding a/x then a/.wh.x keeps a/x (as umoci does); a whiteout of a directory
    this layer holds hides the lower one's contents and keeps its own."""
    l1 = tar_layer([entry("a", "dir"), entry("a/y", data=b"lower y\n"), entry("d", "dir"), entry("d/old", data=b"o")])
    l2 = tar_layer([entry("a/x", data=b"mine\n"), whiteout("a/x"), whiteout("a/y"),
                    entry("d", "dir"), entry("d/new", data=b"n"), whiteout("d")])
    _import(cli, write_oci(tmp_path / "img", [base, l1, l2]), "--tag", "wo")
    assert cli.run("wo", "cat /a/x; ls /a; ls /d") == "mine\nx\nnew\n"


def test_reimport_from_another_format_keeps_the_stored_image(cli, base, tmp_path):
    """issue 19 #2: the same image from a docker archive (uncompressed blobs, no manifest) adds its tag and
    changes nothing else: same manifest, no new blob, export gives the first one back."""
    layer = tar_layer([entry("f", data=b"f" * 100_000)])
    config = image_config([base, layer])
    image = _import(cli, write_oci(tmp_path / "img", [base, layer], config), "--tag", "first")
    manifest = json.loads(cli("image", "inspect", image).stdout)["manifest"]
    blobs = sorted(os.listdir(cli.store / "blobs" / "sha256"))
    again = _import(cli, write_docker_archive(tmp_path / "d.tar", [base, layer], "second:1", config))
    assert again == image
    assert json.loads(cli("image", "inspect", "second:1").stdout)["manifest"] == manifest
    assert sorted(os.listdir(cli.store / "blobs" / "sha256")) == blobs
    cli("image", "export", "second:1", f"oci:{tmp_path}/out")
    assert json.loads((tmp_path / "out" / "index.json").read_text())["manifests"][0]["digest"] == manifest
    assert sorted(cli.images()[0]["tags"]) == ["first:latest", "second:1"]


def test_layout_ref_names_are_tags(cli, base, tmp_path):
    """issue 19 #3: every named image of a layout is imported with its ref name as a tag, or those --ref picks."""
    layout = write_oci(tmp_path / "img", [base, tar_layer([entry("v", data=b"bookworm\n")])], ref="bookworm")
    write_oci(layout, [base, tar_layer([entry("v", data=b"trixie\n")])], ref="trixie")
    write_oci(layout, [base, tar_layer([entry("v", data=b"sid\n")])], ref="example.org/debian:sid")
    assert len(_import(cli, layout, "--ref", "bookworm").split()) == 1
    assert [i["tags"] for i in cli.images()] == [["bookworm:latest"]]
    assert len(_import(cli, layout).split()) == 3
    assert sorted(t for i in cli.images() for t in i["tags"]) == ["bookworm:latest", "example.org/debian:sid",
                                                                   "trixie:latest"]
    assert cli.run("trixie", "cat /v") == "trixie\n"


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_files_stay_sparse(cli, base, tmp_path, fmt):
    """issue 19 #5: a 4 GiB file of holes in a small layer (GNU or PAX sparse) takes no disk."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(1 << 20)
        f.write(b"middle")
        f.truncate(4 << 30)
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(tmp_path / "l.tar"), "-C", str(src), "sparse"],
                   check=True)
    layer = (tmp_path / "l.tar").read_bytes()
    assert len(layer) < 100_000
    image = _import(cli, write_oci(tmp_path / "img", [base, layer]), "--tag", "sparse")
    stored = Path(json.loads(cli("image", "inspect", image).stdout)["layers"][1]["dir"]) / "diff" / "sparse"
    st = os.stat(stored)
    assert st.st_size == 4 << 30 and st.st_blocks * 512 < 1 << 20
    assert cli.run("sparse", "dd if=/sparse bs=1 skip=1048576 count=6 2>/dev/null; stat -c %s /sparse") == \
        f"middle{4 << 30}\n"


def _gzip_of_zeros(size: int) -> bytes:
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(z.compress(chunk) for _ in range(size >> 20)) + z.flush()


def test_decompression_bombs_are_refused(cli, base, tmp_path):
    """issue 19 #5: a small gzip that unpacks to far more than any layer's ratio is refused in one line,
    nothing stored; the limits are flags."""
    bomb = _gzip_of_zeros(400 << 20)
    layout = tmp_path / "img"
    config = image_config([base, b"\0" * 1024])
    config["rootfs"]["diff_ids"][1] = "sha256:" + hashlib.sha256(bytes(400 << 20)).hexdigest()
    write_oci(layout, [base], image_config([base]), how=None)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    d = "sha256:" + hashlib.sha256(bomb).hexdigest()
    (layout / "blobs/sha256" / d[7:]).write_bytes(bomb)
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                               "size": len(bomb)})
    cfg = json.dumps(config).encode()
    manifest["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(cfg),
                          "digest": "sha256:" + hashlib.sha256(cfg).hexdigest()}
    (layout / "blobs/sha256" / manifest["config"]["digest"][7:]).write_bytes(cfg)
    mbytes = json.dumps(manifest).encode()
    md = "sha256:" + hashlib.sha256(mbytes).hexdigest()
    (layout / "blobs/sha256" / md[7:]).write_bytes(mbytes)
    index["manifests"][0].update(digest=md, size=len(mbytes))
    (layout / "index.json").write_text(json.dumps(index))
    r = cli("image", "import", str(layout), check=False)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    assert f"layer 1 ({d}): unpacks to more than 200 times its compressed size" in r.stderr
    _store_is_empty(cli)
    small = write_oci(tmp_path / "small", [base, tar_layer([entry("big", data=os.urandom(2 << 20))])])
    r = cli("image", "import", "--max-layer-size", "1M", str(small), check=False)
    assert r.returncode == 1 and "unpacks to more than 1.0 MiB (--max-layer-size)" in r.stderr
    _store_is_empty(cli)
    assert _import(cli, layout, "--max-layer-ratio", "0").startswith("sha256:")


def test_clear_errors(cli, base, tmp_path):
    """issue 19 #6: each error says what is wrong with which blob or entry, in one line."""
    import gzip as gz

    truncated = gz.compress(tar_layer([entry("f", data=os.urandom(50_000))]))[:20_000]
    layout = write_oci(tmp_path / "trunc", [base, b""], how=None)
    index = json.loads((layout / "index.json").read_text())
    mpath = layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]
    manifest = json.loads(mpath.read_text())
    d = "sha256:" + hashlib.sha256(truncated).hexdigest()
    (layout / "blobs/sha256" / d[7:]).write_bytes(truncated)
    manifest["layers"][1] = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                             "size": len(truncated)}
    mbytes = json.dumps(manifest).encode()
    md = "sha256:" + hashlib.sha256(mbytes).hexdigest()
    (layout / "blobs/sha256" / md[7:]).write_bytes(mbytes)
    index["manifests"][0].update(digest=md, size=len(mbytes))
    (layout / "index.json").write_text(json.dumps(index))
    missing = write_oci(tmp_path / "missing", [base])
    gone = json.loads((missing / "index.json").read_text())["manifests"][0]["digest"]
    (missing / "blobs/sha256" / gone[7:]).unlink()
    (tmp_path / "not-an-image").write_bytes(b"hello\n" * 100)
    cases = {
        str(layout): f"layer 1 ({d}): truncated or corrupt compressed data (",
        str(write_oci(tmp_path / "wh1", [base, tar_layer([entry(".wh...")])])): "'.wh...': a whiteout of '..', "
                                                                                  "which names no entry",
        str(write_oci(tmp_path / "wh2", [base, tar_layer([entry("a/.wh..")])])): "'a/.wh..': a whiteout of '.', "
                                                                                 "which names no entry",
        str(missing): f"manifest {gone}: the index names it but the image has no such blob (blobs/sha256/{gone[7:]})",
        str(tmp_path / "not-an-image"): f"{tmp_path}/not-an-image: not an image: neither a directory nor a tar "
                                        "archive",
    }
    for path, message in cases.items():
        r = cli("image", "import", path, check=False)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("pyoci: image import: ") and message in r.stderr, r.stderr
        _store_is_empty(cli)


def test_info_names_the_default_root(cli, tmp_path):
    """issue 19 #7: without --root, the runtime's root is /run/pyoci, wherever pyoci runs."""
    out = subprocess.run([PYOCI, "--store", str(cli.store), "info", "--format", "json"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["Root"] == "/run/pyoci"


def test_rm_of_several_removes_all_but_the_one_in_use(cli, base, tmp_path):
    """issue 19 #8: image rm A B C with B in use removes A and C and reports B."""
    for name in "abc":
        _import(cli, write_oci(tmp_path / name, [base, tar_layer([entry(name, data=name.encode())])]),
                "--tag", f"rm/{name}")
    bundle = cli.bundle("rm/b", "true")
    r = cli("image", "rm", "rm/a", "rm/b", "rm/c", check=False)
    assert r.returncode == 1
    assert r.stdout.count("deleted sha256:") == 2
    assert r.stderr == f"pyoci: image rm: image rm/b is used by bundle {bundle} (remove it first, or --force)\n"
    assert [i["tags"] for i in cli.images()] == [["rm/b:latest"]]
    cli("bundle", "rm", str(bundle))


PODMAN_CAP_MASK = 0x800405fb  # containers.conf's 11 default capabilities


def _caps(out: str, field: str) -> int:
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith(field)), 16)


def test_image_containers_get_what_podman_gives(cli, base, tmp_path):
    """issue 19 #4: podman's default capabilities for root (chown works), new privileges allowed, and
    /etc/hostname, /etc/hosts, /etc/resolv.conf of the container's own, without changing the image."""
    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "podmanlike")
    name = "pl" + os.urandom(4).hex()
    out = cli("image", "run", "--rm", "--name", name, "podmanlike", "sh", "-c",
              "touch /tmp/x; chown 1:2 /tmp/x; stat -c %u:%g /tmp/x; grep -E '^Cap(Eff|Bnd)|NoNewPrivs' /proc/self/status;"
              " cat /etc/hostname; grep -c localhost /etc/hosts; grep \"$(hostname)\" /etc/hosts;"
              " grep -c ^nameserver /etc/resolv.conf; echo $HOSTNAME").stdout
    lines = out.splitlines()
    assert lines[0] == "1:2"
    assert _caps(out, "CapEff:") == _caps(out, "CapBnd:") == PODMAN_CAP_MASK
    assert "NoNewPrivs:\t0" in out
    assert lines[4] == name and lines[5] == "2" and lines[6].split() == ["127.0.1.1", name]
    assert int(lines[7]) >= 1 and lines[8] == name
    bundle = cli.bundle("podmanlike", "true")
    cli("run", "-b", str(bundle), cli.new_id())
    assert cli("bundle", "diff", str(bundle)).stdout == ""  # the /etc mount points are no change of it


def test_image_run_and_bundle_create_take_podmans_flags(cli, base, tmp_path, monkeypatch):
    """issue 19 #4: --cap-add, --cap-drop, --privileged, --env, --user, --workdir, --mount and -v."""
    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "flags")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("from the host\n")
    monkeypatch.setenv("PYOCI_FROM_CALLER", "passed")
    out = cli("image", "run", "--rm", "--cap-add", "NET_ADMIN", "--cap-drop", "chown", "-e", "A=1",
              "--env", "PYOCI_FROM_CALLER", "-w", "/tmp", "-v", f"{shared}:/mnt/v:ro",
              "--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1m", "flags", "sh", "-c",
              "grep ^CapEff /proc/self/status; echo $A $PYOCI_FROM_CALLER; pwd; cat /mnt/v/f;"
              " touch /mnt/v/no 2>/dev/null || echo ro; df /scratch | tail -1 | awk '{print $1}'").stdout
    lines = out.splitlines()
    assert _caps(out, "CapEff:") == (PODMAN_CAP_MASK | 1 << 12) & ~1
    assert lines[1:] == ["1 passed", "/tmp", "from the host", "ro", "tmpfs"]
    user = cli("image", "run", "--rm", "-u", "1000:1001", "flags", "sh", "-c",
               "id -u; id -g; grep ^CapEff /proc/self/status")
    assert user.stdout.splitlines()[:2] == ["1000", "1001"] and _caps(user.stdout, "CapEff:") == 0
    bundle = tmp_path / "privileged"
    cli("bundle", "create", "--privileged", "flags", str(bundle), "sh", "-c",
        "grep ^CapEff /proc/self/status; stat -c %F /proc/keys; grep ' /sys ' /proc/mounts")
    out = cli("run", "-b", str(bundle), cli.new_id()).stdout
    with open("/proc/self/status") as f:
        assert _caps(out, "CapEff:") == _caps(f.read(), "CapBnd:")
    assert "regular empty file" in out and " rw," in out.splitlines()[-1]  # /proc/keys unmasked, /sys rw


def test_create_of_an_image_bundle_imports_nothing_heavy(cli, base, tmp_path):
    """The runtime mounts an image bundle's overlay at create (pyoci/layer.py) without the store's code:
    nothing of it (json, tarfile, hashing, threads) comes into every create."""
    from test_imports import heavy

    _import(cli, write_oci(tmp_path / "img", [base]), "--tag", "lean")
    bundle = cli.bundle("lean", "true")
    cid = cli.new_id()
    r = cli("create", "--bundle", str(bundle), cid, env={**os.environ, "PYOCI_IMPORTTIME": "1"})
    assert "pyoci.layer" in r.stderr and "pyoci.store" not in r.stderr and heavy(r.stderr) == []
