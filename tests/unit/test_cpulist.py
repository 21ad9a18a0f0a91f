"""The kernel's CPU and node list format ("0-3,7") as execCPUAffinity and memoryPolicy.nodes use it."""
from __future__ import annotations

import pytest

from pyoci.linux import cpulist


@pytest.mark.parametrize("text, ids", [("0", [0]), ("0-3,7", [0, 1, 2, 3, 7]), (" 1 , 1-2,, ", [1, 2]),
                                       ("65536", [65536]), ("5-5", [5])])
def test_parse(text, ids):
    assert cpulist.parse(text) == ids


@pytest.mark.parametrize("text", ["", ",", "a", "1-", "-1", "3-1", "1-2-3", "65537", "0x1", "٣"])
def test_parse_refuses(text):
    with pytest.raises(ValueError):
        cpulist.parse(text)


def test_mask_is_64_ids_per_word():
    assert cpulist.mask([0, 1, 63]) == [(1 << 63) | 3]
    assert cpulist.mask([64, 130]) == [0, 1, 1 << 2]
    assert cpulist.mask([]) == []


def test_text_is_the_kernels_format():
    assert cpulist.text([7, 0, 1, 2, 3, 9]) == "0-3,7,9"
    assert cpulist.text(cpulist.parse("0-3,7")) == "0-3,7"
