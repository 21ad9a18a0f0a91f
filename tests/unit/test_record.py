"""pyoci.record's Record behaves as @dataclass does for the declarations pyoci uses, without dataclasses."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pyoci.record import Record, field, field_names


class Point(Record):
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


class Point3(Point):
    z: int = 5


def test_positional_keyword_and_defaults():
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    assert Point(1, 2, ["a"]).tags == ["a"]
    assert Point(y=3, x=4).x == 4
    assert Point(1).tags is not Point(1).tags  # a fresh list each time


def test_class_level_defaults_stay_and_factories_go():
    Point(1)  # the declaration is read on first use
    assert Point.y == 0
    assert not hasattr(Point, "tags")


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {}, r"missing 1 required positional argument: 'x'"),
    ((1,), {"w": 2}, r"unexpected keyword argument 'w'"),
    ((1,), {"x": 2}, r"multiple values for argument 'x'"),
    ((1, 2, [], 4), {}, r"takes 4 positional arguments but 5 were given"),
])
def test_bad_arguments_are_type_errors(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_repr_and_eq():
    assert repr(Point(1, tags=["a"])) == "Point(x=1, y=0, tags=['a'])"
    assert Point(1) == Point(1, 0, [])
    assert Point(1) != Point(2)
    assert Point(1) != Point3(1)
    assert (Point(1) == (1, 0, [])) is False


def test_unhashable_like_a_dataclass():
    with pytest.raises(TypeError):
        hash(Point(1))


def test_plain_instances_take_more_attributes():
    p = Point(1)
    p.extra = "later"
    assert p.extra == "later" and not hasattr(Point, "__slots__")


def test_subclass_fields_follow_the_base_fields():
    assert repr(Point3(1, z=2)) == "Point3(x=1, y=0, tags=[], z=2)"


def test_declaration_errors_match_dataclass_on_first_use():
    class Bad(Record):
        a: int = 0
        b: int

    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        Bad(1, 2)

    class Mutable(Record):
        a: list = []  # noqa: RUF012

    with pytest.raises(ValueError, match="mutable default"):
        Mutable()


def test_a_subclass_used_before_its_base_reads_both():
    class Base(Record):
        a: int

    class Derived(Base):
        b: int = 2

    assert vars(Derived(1)) == {"a": 1, "b": 2}
    assert vars(Base(3)) == {"a": 3}
    assert field_names(Derived) == ("a", "b") and field_names(Base) == ("a",)


def test_methods_defined_in_the_class_are_kept():
    class Custom(Record):
        a: int

        def __repr__(self) -> str:
            return "custom"

    assert repr(Custom(1)) == "custom"


def test_importing_record_imports_no_dataclasses():
    code = "import sys, pyoci.record; assert 'dataclasses' not in sys.modules and 'typing' not in sys.modules"
    assert subprocess.run([sys.executable, "-I", "-c", code]).returncode == 0
