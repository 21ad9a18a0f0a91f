"""Container ids: runc's rule ([A-Za-z0-9_+.-], 1-1024 long, no "..") checked without re; and how a
container's state is saved while create goes on (each save whole to any reader)."""
from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import PyociError
from pyoci.linux import shim
from pyoci.state import START_SOCKET, STATE_FILE, State, Store, remove_dir, validate_id


def valid(cid: str) -> bool:
    try:
        validate_id(cid)
    except PyociError as exc:
        assert str(exc).startswith("invalid container id ")
        return False
    return True


@pytest.mark.parametrize("cid", ["a", "lean-1", "A_b+c.d-e", "x" * 1024, ".a", "a.", "a.b"])
def test_valid_ids(cid):
    assert valid(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a..b", "../x", "a/b", "sp ace", "x" * 1025, "abc\n", "\nabc", "é",
                                 "a\0b", "٣"])
def test_invalid_ids(cid):
    assert not valid(cid)


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(["a", "Z", "0", "_", "+", ".", "-", "/", " ", "\n", "é", ".."]), max_size=8).map("".join))
def test_the_verdict_of_runcs_regex(cid):
    expected = bool(re.fullmatch(r"[A-Za-z0-9_+.-]{1,1024}", cid)) and cid != "." and ".." not in cid
    assert valid(cid) is expected


def test_exchange_swaps_two_names(tmp_path):
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")
    assert shim.lib.pyoci_exchange(str(tmp_path / "a").encode(), str(tmp_path / "b").encode()) == 0
    assert (tmp_path / "a").read_text() == "B" and (tmp_path / "b").read_text() == "A"


def test_replace_with_or_without_a_file_in_place(tmp_path):
    new, path = tmp_path / "new", tmp_path / "path"
    new.write_text("first")
    shim.replace(str(new), str(path))  # nothing to exchange with: a rename
    new.write_text("second")
    shim.replace(str(new), str(path))
    assert path.read_text() == "second" and sorted(os.listdir(tmp_path)) == ["path"]
    with pytest.raises(FileNotFoundError):
        shim.replace(str(new), str(path))  # neither call can work: the rename's error


def test_each_save_is_whole_to_a_reader_and_leaves_one_file(tmp_path):
    store = Store(str(tmp_path / "root"))
    lock = store.claim(State(id="c1", bundle="/b"))
    try:
        state_file = f"{store.dir('c1')}/{STATE_FILE}"
        with open(state_file) as before:
            for pid in (10, 11):
                store.save(State(id="c1", bundle="/b", pid=pid))
            assert json.load(before)["pid"] == 0  # a reader of the old state reads all of it
        assert store.load("c1").pid == 11
        assert os.listdir(store.dir("c1")) == [STATE_FILE]
    finally:
        lock.release()


@pytest.mark.parametrize("left", [[], [START_SOCKET], [START_SOCKET, STATE_FILE + ".tmp", "other"]])
def test_remove_dir_takes_what_a_container_directory_may_hold(tmp_path, left):
    d = tmp_path / "c1"
    d.mkdir()
    for name in [STATE_FILE, *left]:
        (d / name).write_text("x")
    remove_dir(str(d))
    assert not d.exists()
    remove_dir(str(d))  # gone already: nothing to do


def test_errno_numbers_are_the_errno_modules():
    """pyoci.errors holds the errnos pyoci names as literals (importing errno costs a call 0.2 M instructions):
    each must be the number the errno module has."""
    import errno

    from pyoci import errors

    names = [name for name in vars(errors) if name.startswith("E") and name.isupper()]
    assert names and {name: getattr(errors, name) for name in names} == {name: getattr(errno, name) for name in names}
