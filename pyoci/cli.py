"""runc's command line: global flags, one function per command, imports only what each command needs.

`state`, `kill`, `delete` and `start` stay cheap: the parser is a table (argparse alone costs more than
runc's whole `state`), and none of them loads the config validator or jsonschema.
"""
from __future__ import annotations

import os
import sys

from . import OCI_VERSION, __version__, jsonio
from .errors import PyociError
from .log import Logger
from .state import Store, default_root

SimpleNamespace = type(sys.implementation)  # types.SimpleNamespace, as types.py defines it: types costs an import


class Command:
    """A command's flags: `values` take an argument, `bools` do not; `short` maps one letter to a name."""

    def __init__(self, run, summary: str, args: tuple[str, ...] = (), values: dict[str, str] | None = None,
                 bools: tuple[str, ...] = (), short: dict[str, str] | None = None, optional: int = 0,
                 multi: tuple[str, ...] = ()) -> None:
        self.run, self.summary, self.args = run, summary, args
        self.values = values or {}
        self.multi = multi  # flags that may repeat, collected into a list
        self.bools = bools
        self.short = short or {}
        self.optional = optional  # how many trailing args may be left out


GLOBAL = Command(None, "", values={"root": "", "log": "", "log-format": "text", "rootless": "auto",
                                   "criu": "", "store": "/var/lib/pyoci"},
                 bools=("debug", "systemd-cgroup", "version", "help"), short={"v": "version", "h": "help"})
CREATE_VALUES = {"bundle": ".", "pid-file": "", "console-socket": "", "preserve-fds": "0"}
CREATE_BOOLS = ("no-pivot", "no-new-keyring")


def _parse_flags(cmd: Command, argv: list[str], out: SimpleNamespace, stop_at_word: bool) -> list[str]:
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


def parse_command(a: SimpleNamespace, rest: list[str]) -> None:
    """Fills a with the command named first in rest, its flags and its arguments."""
    if not rest:
        return
    a.command = rest[0]
    table = COMMANDS
    if a.command in GROUPS:
        from .store.commands import COMMANDS as table  # the layer store's commands: `image ...`, `bundle ...`

        if len(rest) < 2 or rest[1].startswith("-"):
            a.help = True
            return
        a.command = f"{rest[0]} {rest[1]}"
        rest = rest[1:]
    cmd = table.get(a.command)
    if cmd is None:
        raise PyociError(f"unknown command {jsonio.dumps(a.command)} (see pyoci --help)")
    a.cmd = cmd
    # A command that takes a command line (exec, ps) reads its own flags only before the first word, as
    # Go's flag package does; the others accept flags anywhere.
    trailing = bool(cmd.args) and cmd.args[-1].endswith("...")
    words = _parse_flags(cmd, rest[1:], a, stop_at_word=trailing)
    if trailing and a.command == "exec" and len(words) > 1 and words[1] == "--":
        del words[1]
    if a.help:
        return
    need = len(cmd.args) - cmd.optional
    if len(words) < need or (len(words) > len(cmd.args) and not trailing):
        raise PyociError(f"usage: pyoci {a.command} {_usage(cmd)}")
    for i, name in enumerate(cmd.args):
        if name.endswith("..."):
            setattr(a, name.rstrip(".").replace("-", "_"), words[i:])
        else:
            setattr(a, name.replace("-", "_"), words[i] if i < len(words) else None)


def _usage(cmd: Command) -> str:
    flags = [f"[--{n} {n.upper().replace('-', '_')}]" for n in cmd.values]
    flags += [f"[--{n} {n.upper().replace('-', '_')}]..." for n in cmd.multi]
    flags += [f"[--{n}]" for n in cmd.bools]
    args = [a if i < len(cmd.args) - cmd.optional else f"[{a}]" for i, a in enumerate(cmd.args)]
    return " ".join(flags + [a.upper() for a in args])


def _help(command: str | None, cmd: Command | None) -> str:
    if command in GROUPS:
        from .store.commands import COMMANDS as table

        lines = [f"{GROUPS[command]}\n", f"usage: pyoci [--store DIR] {command} COMMAND\n", "commands:"]
        lines += [f"  {name.split()[1]:10s}{c.summary}" for name, c in table.items() if name.startswith(command + " ")]
        return "\n".join(lines) + "\n"
    if cmd:
        return f"{cmd.summary}\n\nusage: pyoci {command} {_usage(cmd)}\n"
    lines = ["pyoci: an OCI container runtime, runc-compatible\n",
             "usage: pyoci [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND\n",
             "commands:"]
    lines += [f"  {name:10s}{cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += [f"  {name:10s}{summary} (pyoci {name} --help)" for name, summary in GROUPS.items()]
    return "\n".join(lines) + "\n"


def _preserve_fds(a: SimpleNamespace) -> int:
    try:
        preserve = int(a.preserve_fds)
    except ValueError:
        preserve = -1
    if preserve < 0:
        raise PyociError("--preserve-fds must be a number of fds, 0 or more")
    return preserve


def _rootless(a: SimpleNamespace) -> bool:
    """runc's global --rootless: whether cgroups this user may not make are skipped (auto: when not root)."""
    if a.rootless == "auto":
        return os.geteuid() != 0
    if a.rootless in ("true", "false"):
        return a.rootless == "true"
    raise PyociError(f"--rootless must be true, false or auto, not {jsonio.dumps(a.rootless)}")


def _create_options(a: SimpleNamespace):
    from .container import CreateOptions

    preserve = _preserve_fds(a)
    return CreateOptions(bundle=a.bundle, pid_file=a.pid_file or None, console_socket=a.console_socket or None,
                         no_pivot=a.no_pivot, no_new_keyring=a.no_new_keyring, preserve_fds=preserve,
                         rootless_cgroups=_rootless(a))


def do_create(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import create

    create(store, a.id, _create_options(a), log)
    return 0


def do_run(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .foreground import run

    return run(store, a.id, _create_options(a), log, detach=a.detach, keep=a.keep)


def do_exec(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .execute import ExecOptions, exec_process

    preserve = _preserve_fds(a)
    opts = ExecOptions(a.command_args, process_file=a.process or None, tty=a.tty,
                       console_socket=a.console_socket or None, detach=a.detach, pid_file=a.pid_file or None,
                       preserve_fds=preserve, env=a.env, cwd=a.cwd or None, user=a.user or None,
                       additional_gids=[g for v in a.additional_gids for g in v.split(",") if g],
                       caps=a.cap, no_new_privs=a.no_new_privs, cgroup=a.cgroup,
                       apparmor=a.apparmor or None, process_label=a.process_label or None)
    return exec_process(store, a.id, opts, log)


def do_start(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import start

    start(store, a.id, log)
    return 0


def do_state(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .state import oci_state

    print(jsonio.dumps(oci_state(store, store.load(a.id)), indent=2))
    return 0


def do_kill(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import kill, parse_signal

    kill(store, a.id, parse_signal(a.signal or "TERM"), a.all)
    return 0


def do_delete(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import delete

    delete(store, a.id, a.force, log)
    return 0


def do_list(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .state import oci_state

    check_format(a.format)
    states = []
    for cid in store.ids():
        try:
            states.append(oci_state(store, store.load(cid)))
        except PyociError:
            continue  # deleted while we looked
    if a.quiet:
        print("\n".join(s["id"] for s in states))
    elif a.format == "json":
        print(jsonio.dumps(states))
    else:
        print_table([("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] +
                    [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states])
    return 0


def check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise PyociError(f"--format must be table or json, not {jsonio.dumps(fmt)}")


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def do_pause(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import pause

    pause(store, a.id, a.command == "pause")
    return 0


def do_ps(a: SimpleNamespace, store: Store, log: Logger) -> int:
    """runc's ps: the container's pids as JSON, or the host's `ps` rows of those pids."""
    from .container import processes

    check_format(a.format)
    pids = processes(store, a.id)
    if a.format == "json":
        print(jsonio.dumps(pids))
        return 0
    import subprocess

    ps_args = a.ps_args or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise PyociError(f"ps {' '.join(ps_args)}: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise PyociError("ps output has no PID column")
    col = header.index("PID")
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            print(line)
    return 0


# runc update's flags → where they go in linux.resources; sizes take k/m/g suffixes like runc's.
UPDATE_FLAGS = {
    "memory": ("memory", "limit", True), "memory-swap": ("memory", "swap", True),
    "memory-reservation": ("memory", "reservation", True), "kernel-memory": ("memory", "kernel", True),
    "kernel-memory-tcp": ("memory", "kernelTCP", True), "cpu-share": ("cpu", "shares", False),
    "cpu-shares": ("cpu", "shares", False), "cpu-period": ("cpu", "period", False),
    "cpu-quota": ("cpu", "quota", False), "cpu-burst": ("cpu", "burst", False),
    "cpu-rt-period": ("cpu", "realtimePeriod", False), "cpu-rt-runtime": ("cpu", "realtimeRuntime", False),
    "cpuset-cpus": ("cpu", "cpus", None), "cpuset-mems": ("cpu", "mems", None),
    "pids-limit": ("pids", "limit", False), "blkio-weight": ("blockIO", "weight", False),
    "cpu-idle": ("cpu", "idle", False),
}


UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
         "t": 1 << 40, "tb": 1 << 40}


def parse_size(flag: str, text: str, with_units: bool | None) -> int | str:
    """A flag value: kept as text (None), a number, or a size with a k/m/g/t suffix; -1 is unlimited."""
    if with_units is None:
        return text
    t = text.strip().lower()
    if t == "-1":
        return -1
    digits = t.rstrip("kmgtb")
    suffix = t[len(digits):]
    scale = UNITS.get(suffix) if with_units else (1 if not suffix else None)
    if scale is None or not digits.isdigit():
        raise PyociError(f"--{flag} {text}: not a {'size' if with_units else 'number'}")
    return int(digits) * scale


def do_update(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import update

    if a.resources:
        try:
            if a.resources == "-":
                res = jsonio.load(sys.stdin)
            else:
                with open(a.resources) as f:
                    res = jsonio.load(f)
        except (OSError, ValueError) as exc:
            raise PyociError(f"--resources {a.resources}: {exc}") from None
        if not isinstance(res, dict):
            raise PyociError(f"--resources {a.resources}: not a linux.resources object")
    else:
        res = {}
    for flag, (section, key, with_units) in UPDATE_FLAGS.items():
        value = getattr(a, flag.replace("-", "_"))
        if value:
            res.setdefault(section, {})[key] = parse_size(flag, value, with_units)
    update(store, a.id, res)
    return 0


def parse_duration(text: str) -> float:
    """Go's durations as runc takes them: 5s, 100ms, 1m, 1h."""
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix):
            try:
                value = float(text[: -len(suffix)]) * scale
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise PyociError(f"--interval {text}: not a duration like 5s or 500ms")


def do_events(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .container import events

    events(store, a.id, a.stats, parse_duration(a.interval))
    return 0


def do_spec(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .defaults import default_config

    path = os.path.join(a.bundle, "config.json")
    try:
        with open(path, "x") as f:
            jsonio.dump(default_config(rootless=a.rootless), f, indent=2)
            f.write("\n")
    except FileExistsError:
        raise PyociError(f"{path} exists: remove it first") from None
    except OSError as exc:
        raise PyociError(f"write {path}", exc.errno) from None
    return 0


def do_features(a: SimpleNamespace, store: Store, log: Logger) -> int:
    from .features import features

    print(jsonio.dumps(features(), indent=2))
    return 0


def do_info(a: SimpleNamespace, store: Store, log: Logger) -> int:
    """The runtime and its layer store, in `docker info`'s terms."""
    from .cgroups import is_v2_host
    from .store.info import store_info
    from .store.layout import Layout

    check_format(a.format)
    data = {"Runtime": f"pyoci {__version__}", "OCI Runtime Spec": OCI_VERSION, "Root": os.path.abspath(store.root),
            "Cgroup Version": "2" if is_v2_host() else "1 (hybrid)" if os.path.isdir("/sys/fs/cgroup/unified") else "1",
            **store_info(Layout(a.store))}
    if a.format == "json":
        print(jsonio.dumps(data, indent=2))
    else:
        for key, value in data.items():
            shown = str(value).lower() if isinstance(value, bool) else value
            print(f"{key}: {shown if key != 'Disk Used' else f'{value / 1048576:.1f} MiB'}")
    return 0


COMMANDS = {
    "create": Command(do_create, "create a container, parked before its process runs", ("id",),
                      dict(CREATE_VALUES), CREATE_BOOLS, {"b": "bundle"}),
    "exec": Command(do_exec, "run a new process in a running container", ("id", "command-args..."),
                    values={"process": "", "console-socket": "", "pid-file": "", "preserve-fds": "0", "cwd": "",
                            "user": "", "process-label": "", "apparmor": ""},
                    bools=("tty", "detach", "no-new-privs", "no-subreaper"),
                    short={"p": "process", "t": "tty", "d": "detach", "e": "env", "u": "user", "c": "cap",
                           "g": "additional-gids"},
                    multi=("env", "cap", "additional-gids", "cgroup"), optional=1),
    "start": Command(do_start, "run the process of a created container", ("id",)),
    "run": Command(do_run, "create and start a container; in the foreground, wait for it", ("id",),
                   dict(CREATE_VALUES), CREATE_BOOLS + ("detach", "keep"), {"b": "bundle", "d": "detach"}),
    "state": Command(do_state, "print a container's state as JSON", ("id",)),
    "kill": Command(do_kill, "send a signal (default TERM) to a container's init, or with --all to all its processes",
                    ("id", "signal"), bools=("all",), short={"a": "all"}, optional=1),
    "delete": Command(do_delete, "delete a stopped container (with --force, any)", ("id",), bools=("force",),
                      short={"f": "force"}),
    "list": Command(do_list, "list containers", values={"format": "table"}, bools=("quiet",),
                    short={"f": "format", "q": "quiet"}),
    "pause": Command(do_pause, "freeze every process of a running container", ("id",)),
    "resume": Command(do_pause, "thaw a paused container", ("id",)),
    "ps": Command(do_ps, "list a container's processes (--format json: their pids); args after the id go to ps",
                  ("id", "ps-args..."), values={"format": "table"}, short={"f": "format"}, optional=1),
    "update": Command(do_update, "change the resource limits of a live container", ("id",),
                      values={"resources": "", **{flag: "" for flag in UPDATE_FLAGS}}, short={"r": "resources"}),
    "events": Command(do_events, "stats and OOM events of a container as JSON lines (--stats: one stats object)",
                      ("id",), values={"interval": "5s"}, bools=("stats",)),
    "spec": Command(do_spec, "write a default config.json", values={"bundle": "."}, bools=("rootless",),
                    short={"b": "bundle"}),
    "features": Command(do_features, "print the features this runtime supports, as JSON"),
    "info": Command(do_info, "the runtime, the cgroup version and the layer store (driver, backing filesystem, "
                    "d_type, images, layers, disk)", values={"format": "table"}, short={"f": "format"}),
}
GROUPS = {"image": "images in the overlay layer store (--store, default /var/lib/pyoci)",
          "bundle": "bundles made from stored images: a container layer over the image's layers"}


def add_help(table: dict[str, Command]) -> None:
    for cmd in table.values():
        cmd.bools += ("help",)
        cmd.short.setdefault("h", "help")


add_help(COMMANDS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = SimpleNamespace(command=None)
    try:
        rest = _parse_flags(GLOBAL, argv, a, stop_at_word=True)
    except PyociError as exc:
        Logger().error(f"pyoci: {exc}")
        return 2
    log = Logger(a.log or None, a.log_format, a.debug)
    try:
        parse_command(a, rest)
    except PyociError as exc:
        log.error(f"pyoci: {exc}")
        return 1
    if a.version:
        print(f"pyoci version {__version__}\nspec: {OCI_VERSION}")
        return 0
    if a.help or not a.command:
        sys.stdout.write(_help(a.command, getattr(a, "cmd", None)))
        return 0
    where = a.command + (f" {a.id}" if getattr(a, "id", None) else "")
    try:
        if a.log_format not in ("text", "json"):
            raise PyociError(f"--log-format must be text or json, not {jsonio.dumps(a.log_format)}")
        if a.systemd_cgroup and not os.path.isdir("/run/systemd/system"):
            raise PyociError("--systemd-cgroup: systemd is not running on this host; use cgroupfs (drop the flag)")
        return a.cmd.run(a, Store(a.root or default_root()), log)
    except PyociError as exc:
        log.error(f"pyoci: {where}: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # the system refused something pyoci did not expect to fail: say what and where
        if a.debug:
            raise
        log.error(f"pyoci: {where}: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except Exception as exc:  # a bug: say so in one line unless the user asked for the traceback
        if a.debug:
            raise
        log.error(f"pyoci: {where}: internal error: {exc!r} (run with --debug for details)")
        return 1


def launch() -> None:
    """The `pyoci` command's entry (csrc/launcher.c calls it): main, then an immediate exit. The
    interpreter's teardown (every module and object freed one by one, a few ms) does nothing pyoci needs:
    its files are closed and its log lines written by then, so the standard streams are flushed and the
    process ends at once."""
    code = 1
    try:
        code = main()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # `pyoci list | head -1`
            code = code or 1
    os._exit(code)
