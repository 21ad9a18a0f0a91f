"""pyoci.jsonio gives what the stdlib's json gives: the same text out, the same values in, the same errors."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci import jsonio

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()


def containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)


values = st.recursive(scalars, containers, max_leaves=20)


@settings(max_examples=300)
@given(values)
def test_dumps_matches_json(value):
    assert jsonio.dumps(value) == json.dumps(value)
    assert jsonio.dumps(value, indent=2) == json.dumps(value, indent=2)
    # the layer store's records (sorted, indented) and the digested manifests (plain) are byte for byte json's
    assert jsonio.dumps(value, indent=1, sort_keys=True) == json.dumps(value, indent=1, sort_keys=True)
    assert jsonio.dumps(value, sort_keys=True) == json.dumps(value, sort_keys=True)


@settings(max_examples=300)
@given(values)
def test_loads_round_trip_matches_json(value):
    text = json.dumps(value)
    assert repr(jsonio.loads(text)) == repr(json.loads(text))
    assert repr(jsonio.loads(f" \n{text}\t ".encode())) == repr(json.loads(f" \n{text}\t ".encode()))


@pytest.mark.parametrize("value", [(1, "a"), {1: "int key", None: 2, 1.5: 3}, {"t": (1, 2)}, [], {}, [[]], "é\u2028"])
def test_dumps_odd_shapes(value):
    assert jsonio.dumps(value) == json.dumps(value)
    assert jsonio.dumps(value, indent=2) == json.dumps(value, indent=2)


def test_dumps_refuses_what_json_refuses():
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonio.dumps({"a": {1}})
    with pytest.raises(TypeError, match="Object of type Real is not JSON serializable"):
        jsonio.dumps([jsonio.Real("1.5")], indent=2)
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        jsonio.dumps(loop)


@pytest.mark.parametrize("text", ['{"a": 1,}', '{"a": 1} x', "", "  ", "[1, 2", '"\\ud800', "nul", '{"a" 1}',
                                  b"\xff", "\ufeff{}", '"\x01"', "[" * 100000])
def test_loads_errors_are_json_errors(text):
    with pytest.raises(Exception) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)) as got:
        jsonio.loads(text)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("text", ['{"a": 1.0, "b": [2.5e3, -0.0]}', "1E400", "NaN", "[-Infinity]", '"x\\u00e9"',
                                  b'\xff\xfe{\x00}\x00', b'\xef\xbb\xbf{"a": 1}', '{"a": 1, "a": 2}'])
def test_loads_values_are_json_values(text):
    assert repr(jsonio.loads(text)) == repr(json.loads(text))


def test_reals_stay_text():
    value = jsonio.loads('{"uid": 1.0, "n": 2, "e": 1e400}', parse_float=jsonio.Real)
    assert value == {"uid": jsonio.Real("1.0"), "n": 2, "e": jsonio.Real("1e400")}
    assert not isinstance(value["uid"], (int, float, str))
    assert repr(value["uid"]) == "1.0"
