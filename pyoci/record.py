"""Record: the base of plain data classes declared the way @dataclass declares them, without importing
dataclasses.

`import dataclasses` costs every pyoci call 10-15 ms on a slow machine (it pulls inspect, ast, dis, tokenize,
re and enum), and @dataclass then compiles generated source with exec() for each class it decorates. A
runtime whose `run` should cost no more than runc's cannot pay that per call. A subclass of Record is read
as a dataclass declaration (annotated fields, class-level defaults, `field(default_factory=...)`), and
inherits one __init__ (positional or keyword arguments, TypeError for a missing, unknown or doubled one, as
a dataclass does), __repr__ and __eq__. Inherited rather than set on each class, and the declaration read
when the class is first used rather than when it is made: a create makes ~90 record classes and uses
fewer, and a class given dunder methods of its own, or read at its making, cost ~25-70 k instructions more
each. So a faulty declaration (a field without a default after one with, a mutable default) raises
dataclass's error at the class's first use, not at its definition. Instances are ordinary objects: no
__slots__, so code may set further attributes later.
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any, Callable


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no default given (None is a default)


class Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Any) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] = MISSING) -> Any:
    """A field's default made fresh for each instance (default_factory), as dataclasses.field does."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory)


def _read(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, default, factory) per field, base records' fields first, as dataclass orders them. A default
    given by field() becomes the class attribute, as dataclass leaves it; a factory's goes."""
    table: dict[str, tuple[str, Any, Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        if issubclass(base, Record) and base is not Record:
            table.update((entry[0], entry) for entry in _layout(base)[1])
    own = cls.__dict__
    for name in own.get("__annotations__", {}):
        default, factory = own.get(name, MISSING), MISSING
        if isinstance(default, Field):
            default, factory = default.default, default.default_factory
            if default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
        elif isinstance(default, (list, dict, set)):
            raise ValueError(f"mutable default {type(default)} for field {name} is not allowed: use default_factory")
        table[name] = (name, default, factory)
    return list(table.values())


# A record class's layout: the class, its fields as (name, default, factory), their names in order, the
# names as a set, the plain defaults, the factories and the required names.
Layout = tuple  # (type, list, tuple, frozenset, dict, tuple, tuple)


def _layout(cls: type) -> Layout:
    layout = cls._record  # type: ignore[attr-defined]
    if layout[0] is not cls:  # a base's (or Record's): this class's is made on its first use
        table = _read(cls)
        names: list[str] = []
        defaults: dict[str, Any] = {}
        factories: list[tuple[str, Any]] = []
        required: list[str] = []
        for name, default, factory in table:  # one pass: four cost a create 0.6 M instructions more
            names.append(name)
            if factory is not MISSING:
                factories.append((name, factory))
            elif default is not MISSING:
                defaults[name] = default
            elif defaults or factories:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            else:
                required.append(name)
        layout = cls._record = (  # type: ignore[attr-defined]
            cls, table, tuple(names), frozenset(names), defaults, tuple(factories), tuple(required))
    return layout


def field_names(cls: type[Record]) -> tuple[str, ...]:
    """A record class's fields, its bases' first (the names of dataclasses.fields)."""
    return _layout(cls)[2]


class Record:
    _record: Layout = (None,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A plan has a hundred steps of seventeen fields: the values go in by dict updates, not one by one.
        _, _, positional, names, defaults, factories, required = _layout(type(self))
        if len(args) > len(positional):
            raise TypeError(f"{type(self).__qualname__}.__init__() takes {len(positional) + 1} positional "
                            f"arguments but {len(args) + 1} were given")
        given = dict(zip(positional, args))
        if kwargs:
            for key in kwargs:
                if key not in names:
                    raise TypeError(f"{type(self).__qualname__}.__init__() got an unexpected keyword "
                                    f"argument {key!r}")
                if key in given:
                    raise TypeError(f"{type(self).__qualname__}.__init__() got multiple values for argument "
                                    f"{key!r}")
            given.update(kwargs)
        missing = [repr(name) for name in required if name not in given]
        if missing:
            raise TypeError(f"{type(self).__qualname__}.__init__() missing {len(missing)} required positional "
                            f"argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        values = self.__dict__
        values.update(defaults)
        for name, factory in factories:
            if name not in given:
                values[name] = factory()
        values.update(given)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in field_names(type(self)))

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}("
                f"{', '.join(f'{name}={getattr(self, name)!r}' for name in field_names(type(self)))})")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]
