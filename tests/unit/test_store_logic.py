"""The layer store's pure logic: names, digests, whiteouts, image references, image config -> runtime config."""
from __future__ import annotations

import gzip
import json
from types import SimpleNamespace

import pytest

from pyoci.main import parse_command_line as parse_command
from pyoci.errors import PyociError
from pyoci.store import digest
from pyoci.store.images import compression, normalize_tag, resolve
from pyoci.store.imageconfig import PODMAN_CAPS, resolve_user, runtime_config
from pyoci.store.layout import short_id
from pyoci.store.sources import image_name
from pyoci.store.unpack import split_name, whiteout_target

PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
GROUP = b"root:x:0:\nstaff:x:50:\napp:x:1001:\n"


def read(rel: str) -> bytes | None:
    return {"etc/passwd": PASSWD, "etc/group": GROUP}.get(rel)


@pytest.mark.parametrize("name, parts", [("a/b/c", ["a", "b", "c"]), ("./a//b/", ["a", "b"]), ("./", []),
                                         ("a/./b", ["a", "b"])])
def test_split_name(name, parts):
    assert split_name(name) == parts


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "a/.."])
def test_split_name_refuses_leaving_the_layer(name):
    with pytest.raises(PyociError):
        split_name(name)


@pytest.mark.parametrize("base, target", [(".wh.foo", "foo"), (".wh..wh..opq", None), (".wh..wh.plnk", None),
                                          ("foo", None), (".whfoo", None), (".wh..hidden", ".hidden")])
def test_whiteout_target(base, target):
    assert whiteout_target(base) == target


def test_chain_ids_follow_the_image_spec():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    chains = digest.chain_ids([a, b])
    assert chains[0] == a
    assert chains[1] == digest.of(f"{a} {b}".encode())


def test_digest_check():
    assert digest.check("sha256:" + "0" * 64, "x")
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "0" * 63 + "/", None):
        with pytest.raises(PyociError):
            digest.check(bad, "x")


def test_short_ids_fit_128_layers_in_one_page():
    s = short_id("f" * 64)
    assert len(s) == 26 and s.isalnum() and s == short_id("f" * 64)
    lower = ":".join(f"l/{short_id(str(i))}" for i in range(128))
    data = f"lowerdir={lower},upperdir={'a' * 64}/diff,workdir={'a' * 64}/work,index=off"
    assert len(data) < 4096


@pytest.mark.parametrize("ref, name", [("bookworm", "bookworm:latest"), ("busybox:1.36", "busybox:1.36"),
                                       ("docker.io/library/busybox", "docker.io/library/busybox:latest"),
                                       ("localhost:5000/x", "localhost:5000/x:latest"), ("", None)])
def test_image_names_from_refs(ref, name):
    assert image_name(ref) == name


def test_normalize_tag():
    assert normalize_tag("busybox") == "busybox:latest"
    assert normalize_tag("localhost:5000/a/b:v1") == "localhost:5000/a/b:v1"
    for bad in ("Busybox", "a b", "x:", ":tag"):
        with pytest.raises(PyociError):
            normalize_tag(bad)


def test_compression_is_read_from_the_bytes():
    assert compression(gzip.compress(b"x")[:4]) == "gzip"
    assert compression(b"\x28\xb5\x2f\xfd") == "zstd"
    assert compression(b"ustar") == ""


def test_resolve_by_id_prefix_tag_and_docker_hub_names():
    rec = {"images": {"sha256:" + "ab" * 32: {"tags": ["busybox:latest"]},
                      "sha256:abab" + "cd" * 30: {"tags": ["docker.io/library/alpine:3"]}}}
    assert resolve(rec, "ababa") == "sha256:" + "ab" * 32
    assert resolve(rec, "busybox") == "sha256:" + "ab" * 32
    assert resolve(rec, "alpine:3") == "sha256:abab" + "cd" * 30
    with pytest.raises(PyociError, match="ambiguous"):
        resolve(rec, "abab")
    with pytest.raises(PyociError, match="no image 'nope'"):
        resolve(rec, "nope")


@pytest.mark.parametrize("spec, user", [("", {"uid": 0, "gid": 0}), ("app", {"uid": 1000, "gid": 1001}),
                                        ("1000", {"uid": 1000, "gid": 1001}), ("4242", {"uid": 4242, "gid": 0}),
                                        ("app:staff", {"uid": 1000, "gid": 50}), ("7:8", {"uid": 7, "gid": 8})])
def test_resolve_user(spec, user):
    assert resolve_user(spec, read) == user


@pytest.mark.parametrize("spec, message", [("ghost", "no user 'ghost'"), ("app:ghosts", "no group 'ghosts'")])
def test_resolve_user_refuses_unknown_names(spec, message):
    with pytest.raises(PyociError, match=message):
        resolve_user(spec, read)


def test_runtime_config_from_image_config():
    image = {"os": "linux", "architecture": "amd64", "config": {
        "Entrypoint": ["/entry"], "Cmd": ["--default"], "Env": ["PATH=/app/bin", "MODE=prod"],
        "WorkingDir": "/srv", "User": "app", "Labels": {"org.example.team": "store"}, "StopSignal": "SIGINT"}}
    cfg = runtime_config(image, read, "/store/overlay2/x/merged")
    proc = cfg["process"]
    assert proc["args"] == ["/entry", "--default"]
    assert proc["env"] == ["PATH=/app/bin", "MODE=prod", "HOSTNAME=pyoci"]
    assert (proc["cwd"], proc["user"], proc["terminal"]) == ("/srv", {"uid": 1000, "gid": 1001}, False)
    assert cfg["root"] == {"path": "/store/overlay2/x/merged", "readonly": False}
    assert cfg["annotations"]["org.example.team"] == "store"
    assert cfg["annotations"]["org.opencontainers.image.stopSignal"] == "SIGINT"
    assert proc["noNewPrivileges"] is False and cfg["linux"]["maskedPaths"]  # podman lets su and setuid work
    assert proc["capabilities"]["bounding"] == PODMAN_CAPS and proc["capabilities"]["effective"] == []  # uid 1000
    tty = runtime_config(image, read, "/r", ["sh"], tty=True)
    assert tty["process"]["args"] == ["/entry", "sh"] and tty["process"]["terminal"]
    assert "TERM=xterm" in tty["process"]["env"]


def test_runtime_config_needs_a_command():
    with pytest.raises(PyociError, match="names no command"):
        runtime_config({"config": {}}, read, "/r")


@pytest.mark.parametrize("argv, command", [(["image", "import", "-t", "a", "x.tar"], "image import"),
                                           (["bundle", "create", "img", "dir", "sh", "-c", "x"], "bundle create"),
                                           (["image", "run", "--rm", "-t", "img"], "image run")])
def test_store_commands_parse(argv, command):
    a = SimpleNamespace(command=None, help=False)
    parse_command(a, argv)
    assert a.command == command


def test_unknown_store_command():
    with pytest.raises(PyociError, match='unknown command "image nope"'):
        parse_command(SimpleNamespace(command=None, help=False), ["image", "nope"])


def test_docker_archive_manifest_must_list_an_image(tmp_path):
    from pyoci.store.sources import open_source

    (tmp_path / "manifest.json").write_text(json.dumps([]))
    with pytest.raises(PyociError, match="lists no image"):
        open_source(str(tmp_path))


def test_a_kernel_without_overlay_is_named(monkeypatch, tmp_path):
    from pyoci.store import info
    from pyoci.store.layout import Layout

    monkeypatch.setattr(info.os, "geteuid", lambda: 0)
    monkeypatch.setattr(info, "overlay_supported", lambda: False)
    with pytest.raises(PyociError, match=r"^the kernel has no overlay filesystem \(modprobe overlay\)"):
        info.require_overlay(Layout(str(tmp_path / "store")))


def test_the_store_needs_root(monkeypatch, tmp_path):
    from pyoci.store import info
    from pyoci.store.layout import Layout

    monkeypatch.setattr(info.os, "geteuid", lambda: 1000)
    with pytest.raises(PyociError, match="the layer store needs root"):
        info.require_overlay(Layout(str(tmp_path / "store")))


def test_image_files_are_read_only_as_regular_files_of_sane_size(tmp_path):
    """etc/passwd, group, hosts of an image: a symlink is not followed, a FIFO not waited on, a huge file not
    read; each counts as absent."""
    import os

    from pyoci.defaults import IMAGE_FILE_LIMIT
    from pyoci.store.view import read_file

    layer = tmp_path / "diff"
    (layer / "etc").mkdir(parents=True)
    passwd = layer / "etc" / "passwd"
    passwd.write_bytes(PASSWD)
    assert read_file([str(layer)], "etc/passwd") == PASSWD
    passwd.unlink()
    passwd.symlink_to("/etc/passwd")
    assert read_file([str(layer)], "etc/passwd") is None
    passwd.unlink()
    os.mkfifo(passwd)
    assert read_file([str(layer)], "etc/passwd") is None
    passwd.unlink()
    passwd.write_bytes(b"#" * IMAGE_FILE_LIMIT + b"\n" + PASSWD)
    assert read_file([str(layer)], "etc/passwd") is None
