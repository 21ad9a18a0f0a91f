"""pyoci.linux.fs: the os.path functions the lifecycle uses without importing os give what posixpath gives
(realpath: what the kernel resolves), and getenv follows os.environ once a program has imported it."""
from __future__ import annotations

import os
import posixpath

import pytest

from pyoci.linux import fs

PATHS = ["/", "/a/b/../c", "a/../..", "../x", "/..", "/a/./b/", "a//b", "", ".", "/a/b/..", "a/..", "./a",
         "/a/../../b", "x/y/../../..", "/sys/fs/cgroup/pids/x", "/a/b/c/"]


@pytest.mark.parametrize("path", PATHS)
def test_normpath_dirname_abspath_are_posixpaths(path):
    assert fs.normpath(path) == posixpath.normpath(path)
    assert fs.dirname(path) == posixpath.dirname(path)
    assert fs.abspath(path) == posixpath.abspath(path)


def test_a_leading_double_slash_is_one_slash_as_for_the_kernel():
    assert fs.normpath("//dev") == "/dev"  # posixpath keeps "//dev" (POSIX leaves its meaning open)


@pytest.mark.parametrize("base, path", [("/a", "b"), ("/a/", "b"), ("/a", "/b"), ("", "b"), ("a", ""), ("/", "x")])
def test_join_is_posixpaths(base, path):
    assert fs.join(base, path) == posixpath.join(base, path)


@pytest.mark.parametrize("path, start", [("/sys/fs/cgroup/pids/a/b", "/sys/fs/cgroup/pids"), ("/a", "/a"),
                                         ("/a/b", "/c/d"), ("/", "/x/y"), ("/x", "/"), ("/a/b/", "/a")])
def test_relpath_is_posixpaths(path, start):
    assert fs.relpath(path, start) == posixpath.relpath(path, start)


def test_realpath_resolves_links_as_the_kernel_does(tmp_path):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "other" / "dir").mkdir(parents=True)
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "far").symlink_to(tmp_path / "other" / "dir")
    for path in ["link/sub", "far/../x", "far/..", "link/missing/../y", "missing/../../", "real/", "link"]:
        full = f"{tmp_path}/{path}"
        assert fs.realpath(full) == os.path.realpath(full), path
    assert fs.realpath("/") == "/"


def test_makedirs_makes_the_missing_parents(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    fs.makedirs(str(target), 0o700)
    fs.makedirs(str(target), 0o700)  # exists: nothing to do
    assert target.is_dir()


def test_getenv_reads_os_environ_once_os_is_imported(monkeypatch):
    monkeypatch.setenv("PYOCI_FS_TEST", "set-later")
    assert fs.getenv("PYOCI_FS_TEST") == "set-later"
    monkeypatch.delenv("PYOCI_FS_TEST")
    assert fs.getenv("PYOCI_FS_TEST") is None
