"""Command-line parsing shared by the runtime's commands (cli.py) and the layer store's (store/commands.py):
a command is a table entry, flags are parsed as runc's (Go's flag package) are. A table, not argparse:
argparse alone costs more than runc's whole `state`.
"""
from __future__ import annotations

import sys

from . import jsonio
from .errors import PyociError

SimpleNamespace = type(sys.implementation)  # types.SimpleNamespace, as types.py defines it: types costs an import


class Command:
    """A command's flags: `values` take an argument, `bools` do not; `short` maps one letter to a name."""

    def __init__(self, run, summary: str, args: tuple[str, ...] = (), values: dict[str, str] | None = None,
                 bools: tuple[str, ...] = (), short: dict[str, str] | None = None, optional: int = 0,
                 multi: tuple[str, ...] = (), failed: int = 1) -> None:
        self.run, self.summary, self.args = run, summary, args
        self.failed = failed  # the exit status when the command itself fails (not its container's process)
        self.values = values or {}
        self.multi = multi  # flags that may repeat, collected into a list
        self.bools = bools + ("help",)
        self.short = {"h": "help", **(short or {})}
        self.optional = optional  # how many trailing args may be left out


def parse_flags(cmd: Command, argv: list[str], out: SimpleNamespace, stop_at_word: bool) -> list[str]:
    """Consumes cmd's flags from argv; returns the words left. Accepts --x v, --x=v, -x v and Go's -name."""
    for name, default in cmd.values.items():
        setattr(out, name.replace("-", "_"), default)
    for name in cmd.bools:
        setattr(out, name.replace("-", "_"), False)
    for name in cmd.multi:
        setattr(out, name.replace("-", "_"), [])
    words: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            words += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            if stop_at_word:
                words += argv[i:]
                break
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        name = cmd.short.get(name, name)
        if name in cmd.bools and not eq:
            setattr(out, name.replace("-", "_"), True)
        elif name in cmd.values or name in cmd.multi:
            if not eq:
                if i >= len(argv):
                    raise PyociError(f"flag --{name} needs a value")
                value = argv[i]
                i += 1
            if name in cmd.multi:
                getattr(out, name.replace("-", "_")).append(value)
            else:
                setattr(out, name.replace("-", "_"), value)
        else:
            raise PyociError(f"unknown flag {arg}")
    return words


def parse_command(a: SimpleNamespace, name: str, cmd: Command, argv: list[str]) -> None:
    """Fills a with cmd's flags and arguments from argv (what follows the command's name)."""
    a.command, a.cmd = name, cmd
    # A command that takes a command line (exec, ps) reads its own flags only before the first word, as
    # Go's flag package does; the others accept flags anywhere.
    trailing = bool(cmd.args) and cmd.args[-1].endswith("...")
    words = parse_flags(cmd, argv, a, stop_at_word=trailing)
    if trailing and name == "exec" and len(words) > 1 and words[1] == "--":
        del words[1]
    if a.help:
        return
    need = len(cmd.args) - cmd.optional
    if len(words) < need or (len(words) > len(cmd.args) and not trailing):
        raise PyociError(f"usage: pyoci {name} {usage(cmd)}")
    for i, arg in enumerate(cmd.args):
        if arg.endswith("..."):
            setattr(a, arg.rstrip(".").replace("-", "_"), words[i:])
        else:
            setattr(a, arg.replace("-", "_"), words[i] if i < len(words) else None)


def usage(cmd: Command) -> str:
    flags = [f"[--{n} {n.upper().replace('-', '_')}]" for n in cmd.values]
    flags += [f"[--{n} {n.upper().replace('-', '_')}]..." for n in cmd.multi]
    flags += [f"[--{n}]" for n in cmd.bools if n != "help"]
    args = [a if i < len(cmd.args) - cmd.optional else f"[{a}]" for i, a in enumerate(cmd.args)]
    return " ".join(flags + [a.upper() for a in args])


def check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise PyociError(f"--format must be table or json, not {jsonio.dumps(fmt)}")


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
