"""@record: plain data classes declared the way @dataclass declares them, without importing dataclasses.

`import dataclasses` costs every pyoci call 10-15 ms on a slow machine (it pulls inspect, ast, dis, tokenize,
re and enum), and @dataclass then compiles generated source with exec() for each class it decorates. A
runtime whose `run` should cost no more than runc's cannot pay that per call. @record reads the same
declaration (annotated fields, class-level defaults, `field(default_factory=...)`) into a field table and
gives the class a generic __init__ (positional or keyword arguments, TypeError for a missing, unknown or
doubled one, as a dataclass does), __repr__ and __eq__ over that table. Instances are ordinary objects:
no __slots__, so code may set further attributes later.
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    T = TypeVar("T")


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


def _table(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, default, factory) per field, base records' fields first, as dataclass orders them."""
    table: dict[str, tuple[str, Any, Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        for entry in base.__dict__.get("__record_fields__", ()):
            table[entry[0]] = entry
    for name in cls.__dict__.get("__annotations__", {}):
        default, factory = cls.__dict__.get(name, MISSING), MISSING
        if isinstance(default, Field):
            default, factory = default.default, default.default_factory
            if default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
        elif isinstance(default, (list, dict, set)):
            raise ValueError(f"mutable default {type(default)} for field {name} is not allowed: use default_factory")
        table[name] = (name, default, factory)
    seen_default = False
    for name, default, factory in table.values():
        if default is MISSING and factory is MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            seen_default = True
    return list(table.values())


def record(cls: type[T]) -> type[T]:
    table = _table(cls)
    names = frozenset(name for name, _, _ in table)
    positional = tuple(name for name, _, _ in table)
    defaults = {name: default for name, default, factory in table if factory is MISSING and default is not MISSING}
    factories = tuple((name, factory) for name, _, factory in table if factory is not MISSING)
    required = tuple(name for name, default, factory in table if default is MISSING and factory is MISSING)
    qualname = cls.__qualname__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # A plan has a hundred steps of seventeen fields: the values go in by dict updates, not one by one.
        if len(args) > len(positional):
            raise TypeError(f"{qualname}.__init__() takes {len(positional) + 1} positional arguments but "
                            f"{len(args) + 1} were given")
        given = dict(zip(positional, args))
        if kwargs:
            for key in kwargs:
                if key not in names:
                    raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {key!r}")
                if key in given:
                    raise TypeError(f"{qualname}.__init__() got multiple values for argument {key!r}")
            given.update(kwargs)
        missing = [repr(name) for name in required if name not in given]
        if missing:
            raise TypeError(f"{qualname}.__init__() missing {len(missing)} required positional "
                            f"argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        values = self.__dict__
        values.update(defaults)
        for name, factory in factories:
            if name not in given:
                values[name] = factory()
        values.update(given)

    def _values(obj: Any) -> tuple[Any, ...]:
        return tuple(getattr(obj, name) for name, _, _ in table)

    def __repr__(self: Any) -> str:
        return f"{qualname}({', '.join(f'{name}={getattr(self, name)!r}' for name, _, _ in table)})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    cls.__record_fields__ = tuple(table)  # type: ignore[attr-defined]
    for method in (__init__, __repr__, __eq__):
        if method.__name__ not in cls.__dict__:
            method.__qualname__ = f"{qualname}.{method.__name__}"
            setattr(cls, method.__name__, method)
    if "__hash__" not in cls.__dict__:
        cls.__hash__ = None  # type: ignore[assignment]  # as a dataclass with eq: mutable, so unhashable
    return cls
