"""pyoci's one door for JSON (the runtime's and the layer store's), built on the stdlib's C accelerator
`_json` directly.

`import json` costs every call several ms here (json.decoder pulls re, and re pulls enum); `_json` is the
same C scanner and encoder without them. Output and parsed values are what `json.dumps`/`json.loads` give
with their defaults (ensure_ascii, ", "/": " separators, indent=2 where asked). Anything the fast path does
not take — a parse error, an unusual encoding, a value JSON cannot hold — goes to the stdlib, so that error
texts stay exactly the stdlib's: errors are rare and may pay the import.
"""
from __future__ import annotations

import _json

TYPE_CHECKING = False  # typing costs every call a few ms; annotations are strings anyway
if TYPE_CHECKING:
    from typing import IO, Any, Callable

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
_quote = _json.encode_basestring_ascii


class Real:
    """A JSON real number (text with a fraction or exponent), kept as its text. No config field is a real
    number: a Real is none of int, float, str, so it fails every type check of the generated validator, as
    1.0 fails runc's integer fields. It stands in for decimal.Decimal, which costs an import."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return type(other) is Real and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class _Context:
    """What `_json.make_scanner` reads off a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__

    def __init__(self, parse_float: Callable[[str], Any]) -> None:
        self.parse_float = parse_float


_scanners: dict[object, Callable[[str, int], tuple[Any, int]]] = {}


def _fast_loads(s: str | bytes, parse_float: Callable[[str], Any]) -> Any:
    if not isinstance(s, str):
        # json.loads's detect_encoding picks UTF-8 when there is no BOM and no NUL among the first bytes
        if s[:3] == b"\xef\xbb\xbf" or s[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in s[:4]:
            raise ValueError("not plain UTF-8")
        s = s.decode("utf-8", "surrogatepass")
    elif s.startswith("\ufeff"):
        raise ValueError("BOM")
    scan = _scanners.get(parse_float)
    if scan is None:
        scan = _scanners[parse_float] = _json.make_scanner(_Context(parse_float))
    start = len(s) - len(s.lstrip(_WHITESPACE))
    value, end = scan(s, start)
    if s[end:].strip(_WHITESPACE):
        raise ValueError("extra data")
    return value


def loads(s: str | bytes, parse_float: Callable[[str], Any] = float) -> Any:
    """json.loads(s, parse_float=...): the same value, or the same exception."""
    try:
        return _fast_loads(s, parse_float)
    except Exception:
        import json

        return json.loads(s, parse_float=parse_float)


def load(f: IO[Any], parse_float: Callable[[str], Any] = float) -> Any:
    return loads(f.read(), parse_float)


def _unserializable(o: object) -> object:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o in (float("inf"), float("-inf")):
        return "Infinity" if o > 0 else "-Infinity"
    return float.__repr__(o)


def _indented(o: object, out: list[str], indent: str, level: int, sort_keys: bool) -> None:
    """json.dumps(o, indent=..., sort_keys=...)'s layout for the types pyoci writes; TypeError for any other."""
    if isinstance(o, str):
        out.append(_quote(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        inner = "\n" + indent * (level + 1)
        out.append("[")
        for i, item in enumerate(o):
            out.append(inner if i == 0 else "," + inner)
            _indented(item, out, indent, level + 1, sort_keys)
        out.append("\n" + indent * level + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = "\n" + indent * (level + 1)
        out.append("{")
        for i, (key, item) in enumerate(sorted(o.items()) if sort_keys else o.items()):
            if not isinstance(key, str):
                raise TypeError("a key that is not a string")
            out.append((inner if i == 0 else "," + inner) + _quote(key) + ": ")
            _indented(item, out, indent, level + 1, sort_keys)
        out.append("\n" + indent * level + "}")
    else:
        raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(o: object, indent: int | None = None, sort_keys: bool = False) -> str:
    """json.dumps(o, indent=indent, sort_keys=sort_keys): the same text, or the same exception."""
    try:
        if indent is not None:
            out: list[str] = []
            _indented(o, out, " " * indent, 0, sort_keys)
            return "".join(out)
        if isinstance(o, str):
            return _quote(o)
        encode = _json.make_encoder({}, _unserializable, _quote, None, ": ", ", ", sort_keys, False, True)
        return "".join(encode(o, 0))
    except (TypeError, ValueError, RecursionError):
        import json

        return json.dumps(o, indent=indent, sort_keys=sort_keys)


def dump(o: object, f: IO[str], indent: int | None = None, sort_keys: bool = False) -> None:
    f.write(dumps(o, indent, sort_keys))
