"""runc's commands: one function per command, which parses nothing itself (cmdline.py does) and only turns
flags into calls of the Python API (container.py) and results into output. Each imports only what its
command needs: `state`, `kill`, `delete` and `start` never load the config validator or jsonschema.
"""
from __future__ import annotations

import sys

from . import jsonio
from .cmdline import Command, SimpleNamespace, check_format, print_table
from .errors import PyociError
from .linux.files import read_text
from .linux.fs import join

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .container import Runtime

CREATE_VALUES = {"bundle": ".", "pid-file": "", "console-socket": "", "pidfd-socket": "", "preserve-fds": "0"}
CREATE_BOOLS = ("no-pivot", "no-new-keyring")


def _preserve_fds(a: SimpleNamespace) -> int:
    try:
        preserve = int(a.preserve_fds)
    except ValueError:
        preserve = -1
    if preserve < 0:
        raise PyociError("--preserve-fds must be a number of fds, 0 or more")
    return preserve


def _create_options(a: SimpleNamespace) -> dict[str, object]:
    return {"pid_file": a.pid_file or None, "console_socket": a.console_socket or None, "no_pivot": a.no_pivot,
            "no_new_keyring": a.no_new_keyring, "preserve_fds": _preserve_fds(a),
            "pidfd_socket": a.pidfd_socket or None}


def do_create(a: SimpleNamespace, rt: Runtime) -> int:
    rt.create(a.id, a.bundle, **_create_options(a))
    return 0


def do_run(a: SimpleNamespace, rt: Runtime) -> int:
    from .foreground import run

    return run(rt, a.id, a.bundle, _create_options(a), detach=a.detach, keep=a.keep)


def do_exec(a: SimpleNamespace, rt: Runtime) -> int:
    from .execute import ExecOptions
    from .foreground import supervise

    opts = ExecOptions(a.command_args, process_file=a.process or None, tty=a.tty,
                       console_socket=a.console_socket or None, detach=a.detach, pid_file=a.pid_file or None,
                       preserve_fds=_preserve_fds(a), env=a.env, cwd=a.cwd or None, user=a.user or None,
                       additional_gids=[g for v in a.additional_gids for g in v.split(",") if g],
                       caps=a.cap, no_new_privs=a.no_new_privs, cgroup=a.cgroup,
                       apparmor=a.apparmor or None, process_label=a.process_label or None,
                       pidfd_socket=a.pidfd_socket or None, ignore_paused=a.ignore_paused)
    proc = rt.container(a.id).exec(opts)
    if opts.detach:
        return 0
    return supervise(proc.pid, proc.console)


def do_start(a: SimpleNamespace, rt: Runtime) -> int:
    rt.container(a.id).start()
    return 0


def do_state(a: SimpleNamespace, rt: Runtime) -> int:
    print(jsonio.dumps(rt.container(a.id).state(), indent=2))
    return 0


def do_kill(a: SimpleNamespace, rt: Runtime) -> int:
    from .container import parse_signal

    rt.container(a.id).kill(parse_signal(a.signal or "TERM"), a.all)
    return 0


def do_delete(a: SimpleNamespace, rt: Runtime) -> int:
    rt.delete(a.id, a.force)
    return 0


def do_list(a: SimpleNamespace, rt: Runtime) -> int:
    from .errors import NotFoundError

    check_format(a.format)
    states = []
    for c in rt.list():
        try:
            states.append({**c.state(), "owner": c.owner})
        except NotFoundError:
            continue  # deleted while we looked
        except PyociError as exc:  # damaged while we looked: the others are still listed, as runc lists them
            rt.log.warning(str(exc))
    if a.quiet:
        print("\n".join(s["id"] for s in states))
    elif a.format == "json":
        print(jsonio.dumps(states))
    else:
        print_table([("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] +
                    [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states])
    return 0


def do_pause(a: SimpleNamespace, rt: Runtime) -> int:
    c = rt.container(a.id)
    c.pause() if a.command == "pause" else c.resume()
    return 0


def do_ps(a: SimpleNamespace, rt: Runtime) -> int:
    """runc's ps: the container's pids as JSON, or the host's `ps` rows of those pids."""
    check_format(a.format)
    pids = rt.container(a.id).processes()
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


def do_update(a: SimpleNamespace, rt: Runtime) -> int:
    if a.resources:
        try:
            if a.resources == "-":
                res = jsonio.load(sys.stdin)
            else:
                res = jsonio.loads(read_text(a.resources))
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
    if a.mem_bw_schema and not a.mem_bw_schema.startswith("MB:"):
        raise PyociError(f"--mem-bw-schema {a.mem_bw_schema}: must start with MB:")
    rt.container(a.id).update(res, [line for line in (a.l3_cache_schema, a.mem_bw_schema) if line])
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


def do_events(a: SimpleNamespace, rt: Runtime) -> int:
    c = rt.container(a.id)
    if a.stats:
        print(jsonio.dumps({"type": "stats", "id": c.id, "data": c.stats()}), flush=True)
        return 0
    interval = parse_duration(a.interval)
    from .foreground import collect_from_here

    collect_from_here()  # this loop lasts as long as the container
    for event in c.events(interval):
        print(jsonio.dumps(event), flush=True)
    return 0


def do_spec(a: SimpleNamespace, rt: Runtime) -> int:
    from .defaults import default_config

    path = join(a.bundle, "config.json")
    try:
        with open(path, "x") as f:
            jsonio.dump(default_config(rootless=a.rootless), f, indent=2)
            f.write("\n")
    except FileExistsError:
        raise PyociError(f"{path} exists: remove it first") from None
    except OSError as exc:
        raise PyociError(f"write {path}", exc.errno) from None
    return 0


def do_features(a: SimpleNamespace, rt: Runtime) -> int:
    from .features import features

    print(jsonio.dumps(features(), indent=2))
    return 0


COMMANDS = {
    "create": Command(do_create, "create a container, parked before its process runs", ("id",),
                      dict(CREATE_VALUES), CREATE_BOOLS, {"b": "bundle"}),
    "exec": Command(do_exec, "run a new process in a running container", ("id", "command-args..."),
                    values={"process": "", "console-socket": "", "pidfd-socket": "", "pid-file": "",
                            "preserve-fds": "0", "cwd": "", "user": "", "process-label": "", "apparmor": ""},
                    bools=("tty", "detach", "no-new-privs", "no-subreaper", "ignore-paused"),
                    short={"p": "process", "t": "tty", "d": "detach", "e": "env", "u": "user", "c": "cap",
                           "g": "additional-gids"},
                    multi=("env", "cap", "additional-gids", "cgroup"), optional=1,
                    failed=255),  # runc's: 1 might be the process's own status
    "start": Command(do_start, "run the process of a created container", ("id",)),
    "run": Command(do_run, "create and start a container; in the foreground, wait for it", ("id",),
                   dict(CREATE_VALUES), CREATE_BOOLS + ("detach", "keep", "no-subreaper"),
                   {"b": "bundle", "d": "detach"}),
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
                      values={"resources": "", **{flag: "" for flag in UPDATE_FLAGS}, "l3-cache-schema": "",
                              "mem-bw-schema": ""}, short={"r": "resources"}),
    "events": Command(do_events, "stats and OOM events of a container as JSON lines (--stats: one stats object)",
                      ("id",), values={"interval": "5s"}, bools=("stats",)),
    "spec": Command(do_spec, "write a default config.json", values={"bundle": "."}, bools=("rootless",),
                    short={"b": "bundle"}),
    "features": Command(do_features, "print the features this runtime supports, as JSON"),
}
