"""Container ids: runc's rule ([A-Za-z0-9_+.-], 1-1024 long, no "..") checked without re."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import PyociError
from pyoci.state import validate_id


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
