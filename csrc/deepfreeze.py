"""Build-time generator: pyoci's frozen modules as CPython 3.11 objects in the command's own data
(`deep-frozen`, as CPython 3.11 freezes importlib and os), which csrc/deepfrozen.c hands to the import.

Why: a module frozen as marshal data is unmarshalled by every call that imports it, every code object,
string, tuple and number made and filled one by one. Deep-frozen, a module's code is there when the program
is mapped; importing it only interns its names (as unmarshalling did too) and turns its set constants into
frozensets. A `--version` takes 8.8 M instructions where it took 9.7 M, a create 31.0 M where it took 36.3 M.

The objects are laid out as CPython 3.11's headers define them (cpython/code.h's _PyCode_DEF, the unicode,
bytes, tuple, int and float structs), so this is only for a command linked with 3.11's static library
(setup.py decides), compiled with Py_BUILD_CORE. They are never freed: their reference counts start at
999999999, like CPython's own deep-frozen objects.
"""
from __future__ import annotations

import sys
import types
from collections import Counter

RESUME = 151  # the opcode at which a code object's tracing starts (_co_firsttraceable)
CO_FAST_LOCAL, CO_FAST_CELL, CO_FAST_FREE = 0x20, 0x40, 0x80
IMMORTAL = "999999999"


def c_literal(data: bytes) -> str:
    """A C string literal of data (octal escapes: a hex escape would swallow a following digit)."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else f"\\{b:03o}" for b in data) + '"'


def _head(type_name: str) -> str:
    return f"{{.ob_refcnt = {IMMORTAL}, .ob_type = &{type_name}}}"


def _var_head(type_name: str, size: int) -> str:
    return f"{{.ob_base = {_head(type_name)}, .ob_size = {size}}}"


def localsplus(code: types.CodeType) -> tuple[tuple[str, ...], bytes]:
    """The names and kinds of a code object's locals, cells and free variables in the order its bytecode
    indexes them (3.11 keeps them in one array that Python does not show as such)."""
    count = len(code.co_varnames) + len(set(code.co_cellvars) - set(code.co_varnames)) + len(code.co_freevars)
    names = tuple(code._varname_from_oparg(i) for i in range(count))
    kinds = bytes((CO_FAST_LOCAL if n in code.co_varnames else 0) | (CO_FAST_CELL if n in code.co_cellvars else 0)
                  | (CO_FAST_FREE if n in code.co_freevars else 0) for n in names)
    derived = tuple(tuple(n for n, k in zip(names, kinds) if k & kind) for kind in (CO_FAST_LOCAL, CO_FAST_CELL,
                                                                                    CO_FAST_FREE))
    if derived != (code.co_varnames, code.co_cellvars, code.co_freevars) or len(set(names)) != count:
        raise RuntimeError(f"{code.co_qualname} in {code.co_filename}: cannot lay out its locals")
    return names, kinds


def strings(code: types.CodeType) -> set[str]:
    """Every string a module's code objects hold (what Writer.object meets for it)."""
    found = {*code.co_names, *code.co_varnames, *code.co_cellvars, *code.co_freevars, code.co_filename,
             code.co_name, code.co_qualname}
    pending = list(code.co_consts)
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, (tuple, frozenset)):
            pending += item
        elif isinstance(item, types.CodeType):
            found |= strings(item)
    return found


class Writer:
    """The C definitions of objects, each written once per module (equal constants are one object, as
    unmarshalling one module makes them; code objects are never merged, since each names its own file and
    line), in the module's own section: importing a module then makes only its own pages the process's. A
    string that more than one module holds is one object for all, in the section `shared` (populated with
    the first module), not a copy in each (~0.2 MiB more of a create's peak RSS, and interning each copy)."""

    def __init__(self, shared: set[str]) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.section = ""
        self.shared = shared
        self.made: dict[object, str] = {}  # of the module being written
        self.made_shared: dict[object, str] = {}
        self.codes: list[str] = []  # the code objects of the module being written
        self.sets: list[str] = []  # slots of its tuples that hold a frozenset constant, as a tuple for now

    @staticmethod
    def _items(obj: tuple | frozenset) -> tuple:
        """A tuple's items, or a frozenset's in one order (repr's), which its key and its C tuple share."""
        return tuple(sorted(obj, key=repr)) if isinstance(obj, frozenset) else obj

    @staticmethod
    def _key(obj: object) -> object:
        if isinstance(obj, types.CodeType):
            return ("code", id(obj))
        if isinstance(obj, (tuple, frozenset)):
            return (type(obj).__name__, tuple(Writer._key(item) for item in Writer._items(obj)))
        return (type(obj).__name__, repr(obj))  # repr tells -0.0 from 0.0

    def object(self, obj: object) -> str:
        """A C expression for the object (a PyObject *), its definition written first if it is new."""
        if obj is None or obj is True or obj is False or obj is Ellipsis:
            return {None: "Py_None", True: "Py_True", False: "Py_False", Ellipsis: "Py_Ellipsis"}[obj]
        key = self._key(obj)
        made = self.made_shared if isinstance(obj, str) and obj in self.shared else self.made
        if key not in made:
            section, self.section = self.section, "shared" if made is self.made_shared else self.section
            made[key] = self._define(obj)
            self.section = section
        expression = made[key]
        if isinstance(obj, types.CodeType):
            self.codes.append(f"(PyCodeObject *){expression}")
        return expression

    def _define(self, obj: object) -> str:
        if isinstance(obj, types.CodeType):
            return self._code(obj)
        if isinstance(obj, (tuple, frozenset)):
            return self._tuple(self._items(obj))
        if isinstance(obj, str):
            return self._str(obj)
        if isinstance(obj, bytes):
            return self._bytes(obj)
        if isinstance(obj, int):
            return self._int(obj)
        if isinstance(obj, float) and obj == obj and abs(obj) != float("inf"):
            return self._object("PyFloatObject",
                                f"{{.ob_base = {_head('PyFloat_Type')}, .ob_fval = {obj.hex()}}}")
        raise RuntimeError(f"cannot deep-freeze a constant of type {type(obj).__name__}: {obj!r:.60}")

    def _new_name(self) -> str:
        self.count += 1
        return f"o{self.count}"

    def _static(self, layout: str, value: str, name: str = "") -> str:
        """Defines one object, static and in the current section; its name."""
        name = name or self._new_name()
        self.lines.append(f"static DEEP({self.section}) {layout} {name} = {value};")
        return name

    def _object(self, layout: str, value: str, name: str = "") -> str:
        return f"(PyObject *)&{self._static(layout, value, name)}"

    def _str(self, text: str) -> str:
        if text == "":
            return "(PyObject *)&_Py_STR(empty)"
        widest = max(map(ord, text))
        state = ".state = {.kind = %d, .compact = 1, .ascii = %d, .ready = 1}"
        base = f".ob_base = {_head('PyUnicode_Type')}, .length = {len(text)}, .hash = -1"
        if widest < 0x80:
            return self._object(f"struct {{ PyASCIIObject _ascii; uint8_t _data[{len(text) + 1}]; }}",
                                f"{{._ascii = {{{base}, {state % (1, 1)}}}, ._data = {c_literal(text.encode())}}}")
        kind = 1 if widest < 0x100 else 2 if widest < 0x10000 else 4
        name, wstr, wstr_length = self._new_name(), "", ""
        if kind == 4:  # wchar_t is 4 bytes on Linux: the string shares its data as wstr, as PyUnicode_New makes it
            wstr, wstr_length = f", .wstr = (wchar_t *){name}._data", f", .wstr_length = {len(text)}"
        data = ", ".join(str(ord(c)) for c in text)
        return self._object(f"struct {{ PyCompactUnicodeObject _compact; uint{8 * kind}_t _data[{len(text) + 1}]; }}",
                            f"{{._compact = {{._base = {{{base}, {state % (kind, 0)}{wstr}}}{wstr_length}}}, "
                            f"._data = {{{data}, 0}}}}", name)

    def _bytes(self, data: bytes) -> str:
        if len(data) <= 1:
            return (f"(PyObject *)&_Py_SINGLETON(bytes_characters[{data[0]}])" if data
                    else "(PyObject *)&_Py_SINGLETON(bytes_empty)")
        return self._object(f"struct {{ PyObject_VAR_HEAD Py_hash_t ob_shash; char ob_sval[{len(data) + 1}]; }}",
                            f"{{.ob_base = {_var_head('PyBytes_Type', len(data))}, .ob_shash = -1, "
                            f".ob_sval = {c_literal(data)}}}")

    def _int(self, value: int) -> str:
        if -5 <= value <= 256:
            return f"(PyObject *)&_PyLong_SMALL_INTS[_PY_NSMALLNEGINTS + {value}]"
        digits, rest = [], abs(value)
        while rest:
            rest, digit = divmod(rest, 1 << sys.int_info.bits_per_digit)
            digits.append(str(digit))
        size = len(digits) if value > 0 else -len(digits)
        return self._object(f"struct {{ PyObject_VAR_HEAD digit ob_digit[{len(digits)}]; }}",
                            f"{{.ob_base = {_var_head('PyLong_Type', size)}, .ob_digit = {{{', '.join(digits)}}}}}")

    def _tuple(self, items: tuple) -> str:
        if not items:
            return "(PyObject *)&_Py_SINGLETON(tuple_empty)"
        values = [self.object(item) for item in items]
        layout = f"struct {{ PyObject_VAR_HEAD PyObject *ob_item[{len(items)}]; }}"
        name = self._static(f"struct {{ PyGC_Head _gc_head; {layout} _object; }}",
                            f"{{._object = {{.ob_base = {_var_head('PyTuple_Type', len(items))}, "
                            f".ob_item = {{{', '.join(values)}}}}}}}")
        self.sets += [f"&{name}._object.ob_item[{i}]" for i, item in enumerate(items) if isinstance(item, frozenset)]
        return f"(PyObject *)&{name}._object"  # a tuple's PyGC_Head comes before it

    def _code(self, code: types.CodeType) -> str:
        names, kinds = localsplus(code)
        fields = {
            "co_consts": self.object(code.co_consts), "co_names": self.object(code.co_names),
            "co_exceptiontable": self.object(code.co_exceptiontable), "co_flags": code.co_flags,
            "co_warmup": "QUICKENING_INITIAL_WARMUP_VALUE", "co_argcount": code.co_argcount,
            "co_posonlyargcount": code.co_posonlyargcount, "co_kwonlyargcount": code.co_kwonlyargcount,
            "co_stacksize": code.co_stacksize, "co_firstlineno": code.co_firstlineno, "co_nlocalsplus": len(names),
            "co_nlocals": code.co_nlocals,
            "co_nplaincellvars": sum(k & (CO_FAST_LOCAL | CO_FAST_CELL) == CO_FAST_CELL for k in kinds),
            "co_ncellvars": len(code.co_cellvars), "co_nfreevars": len(code.co_freevars),
            "co_localsplusnames": self.object(names), "co_localspluskinds": self.object(kinds),
            "co_filename": self.object(code.co_filename), "co_name": self.object(code.co_name),
            "co_qualname": self.object(code.co_qualname), "co_linetable": self.object(code.co_linetable),
            "_co_firsttraceable": next((i for i, op in enumerate(code.co_code[::2]) if op == RESUME),
                                       len(code.co_code) // 2),
            "co_code_adaptive": c_literal(code.co_code),
        }
        return self._object(f"struct _PyCode_DEF({len(code.co_code)})",
                            f"{{.ob_base = {_var_head('PyCode_Type', len(code.co_code) // 2)}, "
                            + ", ".join(f".{field} = {value}" for field, value in fields.items()) + "}")

    def module(self, index: int, code: types.CodeType) -> None:
        """One module's objects, the list of its code objects and frozenset slots, and its get_code
        function (pyoci_frozen_INDEX, which the frozen table names)."""
        self.section, self.codes, self.sets, self.made = str(index), [], [], {}
        self.object(code)
        codes, sets = self.codes[::-1], self.sets  # the module's own code object first
        self.lines.append(f"static PyCodeObject *const codes{index}[] = {{{', '.join(codes)}}};")
        if sets:
            self.lines.append(f"static PyObject **const sets{index}[] = {{{', '.join(sets)}}};")
        self.lines.append(f"MODULE({index}, codes{index}, {f'sets{index}' if sets else 'NULL'}, {len(sets)})")


def generate(code: list[types.CodeType]) -> str:
    """The deep-frozen objects of every module (in the order of code), for csrc/deepfrozen.c to include."""
    held = Counter(text for module_code in code for text in strings(module_code))
    writer = Writer({text for text, modules in held.items() if modules > 1})
    for index, module_code in enumerate(code):
        writer.module(index, module_code)
    return (f"/* Generated by csrc/deepfreeze.py; do not edit. */\n#if PYLONG_BITS_IN_DIGIT != "
            f"{sys.int_info.bits_per_digit}\n#error \"built for another digit size\"\n#endif\n"
            + "\n".join(writer.lines) + "\n")
