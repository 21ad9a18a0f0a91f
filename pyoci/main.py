"""The `pyoci` command: runc's global flags, then a runtime command (cli.py) or a layer-store command group
(`image ...`, `bundle ...`: store/commands.py). The one place that knows both, so that neither the runtime
nor the store imports the other's command line; and the one place that turns an error into the line the
user (and the --log file) sees.
"""
from __future__ import annotations

import posix
import sys

from . import OCI_VERSION, __version__, jsonio
from .cli import COMMANDS
from .cmdline import Command, SimpleNamespace, check_format, parse_command, parse_flags, usage
from .errors import PyociError
from .linux.fs import abspath, isdir
from .log import Logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .container import Runtime

GLOBAL = Command(None, "", values={"root": "", "log": "", "log-format": "text", "rootless": "auto",
                                   "criu": "", "store": "/var/lib/pyoci"},
                 bools=("debug", "systemd-cgroup", "version"), short={"v": "version"})
GROUPS = {"image": "images in the overlay layer store (--store, default /var/lib/pyoci)",
          "bundle": "bundles made from stored images: a container layer over the image's layers"}


def do_info(a: SimpleNamespace, rt: Runtime) -> int:
    """The runtime and its layer store, in `docker info`'s terms."""
    from .cgroups import is_v2_host
    from .store.info import store_info
    from .store.layout import Layout
    from .store.progress import human_size

    check_format(a.format)
    data = {"Runtime": f"pyoci {__version__}", "OCI Runtime Spec": OCI_VERSION, "Root": abspath(rt.root),
            "Cgroup Version": "2" if is_v2_host() else "1 (hybrid)" if isdir("/sys/fs/cgroup/unified") else "1",
            **store_info(Layout(a.store))}
    if a.format == "json":
        print(jsonio.dumps(data, indent=2))
    else:
        for key, value in data.items():
            shown = str(value).lower() if isinstance(value, bool) else value
            print(f"{key}: {shown if key != 'Disk Used' else human_size(value)}")
    return 0


TOP = {**COMMANDS, "info": Command(do_info, "the runtime, the cgroup version and the layer store (driver, backing "
                                   "filesystem, d_type, images, layers, disk)", values={"format": "table"},
                                   short={"f": "format"})}


def _group_table(group: str) -> dict[str, Command]:
    from .store.commands import COMMANDS as table

    return {name: cmd for name, cmd in table.items() if name.startswith(group + " ")}


def _help(a: SimpleNamespace) -> str:
    if a.command in GROUPS:
        lines = [f"{GROUPS[a.command]}\n", f"usage: pyoci [--store DIR] {a.command} COMMAND\n", "commands:"]
        lines += [f"  {name.split()[1]:10s}{c.summary}" for name, c in _group_table(a.command).items()]
        return "\n".join(lines) + "\n"
    if getattr(a, "cmd", None):
        return f"{a.cmd.summary}\n\nusage: pyoci {a.command} {usage(a.cmd)}\n"
    lines = ["pyoci: an OCI container runtime, runc-compatible\n",
             "usage: pyoci [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND\n",
             "commands:"]
    lines += [f"  {name:10s}{cmd.summary}" for name, cmd in TOP.items()]
    lines += [f"  {name:10s}{summary} (pyoci {name} --help)" for name, summary in GROUPS.items()]
    return "\n".join(lines) + "\n"


def parse_command_line(a: SimpleNamespace, rest: list[str]) -> None:
    """The command named first in rest (two words for a group's), its flags and arguments into a."""
    if not rest:
        return
    name, table = rest[0], TOP
    if name in GROUPS:
        if len(rest) < 2 or rest[1].startswith("-"):
            a.command, a.help = name, True
            return
        name, table, rest = f"{rest[0]} {rest[1]}", _group_table(rest[0]), rest[1:]
    cmd = table.get(name)
    if cmd is None:
        raise PyociError(f"unknown command {jsonio.dumps(name)} (see pyoci --help)")
    parse_command(a, name, cmd, rest[1:])


def _rootless(flag: str) -> bool:
    """runc's global --rootless: whether cgroups this user may not make are skipped (auto: when not root)."""
    if flag == "auto":
        return posix.geteuid() != 0
    if flag in ("true", "false"):
        return flag == "true"
    raise PyociError(f"--rootless must be true, false or auto, not {jsonio.dumps(flag)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = SimpleNamespace(command=None)
    try:
        rest = parse_flags(GLOBAL, argv, a, stop_at_word=True)
    except PyociError as exc:
        Logger().error(f"pyoci: {exc}")
        return 2
    log = Logger(a.log or None, a.log_format, a.debug)
    rootless = a.rootless  # `spec --rootless` has a flag of that name too
    try:
        log.open()
    except PyociError as exc:
        Logger().error(f"pyoci: {exc}")
        return 1
    try:
        parse_command_line(a, rest)
    except PyociError as exc:
        log.error(f"pyoci: {exc}")
        return 1
    if a.version:
        print(f"pyoci version {__version__}\nspec: {OCI_VERSION}")
        return 0
    if a.help or not a.command:
        sys.stdout.write(_help(a))
        return 0
    where = log.context = a.command + (f" {a.id}" if getattr(a, "id", None) else "")
    try:
        if a.log_format not in ("text", "json"):
            raise PyociError(f"--log-format must be text or json, not {jsonio.dumps(a.log_format)}")
        if a.systemd_cgroup and not isdir("/run/systemd/system"):
            raise PyociError("--systemd-cgroup: systemd is not running on this host; use cgroupfs (drop the flag)")
        from .container import Runtime

        return a.cmd.run(a, Runtime(a.root or None, log, _rootless(rootless)))
    except PyociError as exc:
        log.error(f"pyoci: {where}: {exc}")
        return a.cmd.failed
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # the system refused something pyoci did not expect to fail: say what and where
        if a.debug:
            raise
        log.error(f"pyoci: {where}: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return a.cmd.failed
    except Exception as exc:  # a bug: say so in one line unless the user asked for the traceback
        if a.debug:
            raise
        log.error(f"pyoci: {where}: internal error: {exc!r} (run with --debug for details)")
        return a.cmd.failed


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
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:  # started with the fd closed, CPython makes the stream None
                    stream.flush()
        except BrokenPipeError:  # `pyoci list | head -1`
            code = code or 1
    posix._exit(code)
