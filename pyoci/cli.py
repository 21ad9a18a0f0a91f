"""runc's command line: global flags, one function per command, imports only what each command needs.

`state`, `kill`, `delete` and `start` stay cheap: none of them loads the config validator or jsonschema.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__, OCI_VERSION
from .errors import PyociError
from .log import Logger
from .state import Store


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyoci", description="An OCI container runtime, runc-compatible.")
    p.add_argument("--root", default="/run/pyoci", help="state directory (default /run/pyoci)")
    p.add_argument("--log", default=None, help="also write errors to this file")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true", help="debug output, tracebacks on internal errors")
    p.add_argument("--systemd-cgroup", action="store_true", help="use systemd for cgroups (needs systemd)")
    p.add_argument("--rootless", default="auto", help="accepted for runc compatibility")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_)

    c = cmd("create", "create a container, parked before its process runs")
    _create_flags(c)
    r = cmd("run", "create and start a container; in the foreground, wait for it")
    _create_flags(r)
    r.add_argument("-d", "--detach", action="store_true")
    r.add_argument("--keep", action="store_true", help="keep the container's state after it exits")
    s = cmd("start", "run the process of a created container")
    s.add_argument("id")
    s = cmd("state", "print a container's state as JSON")
    s.add_argument("id")
    k = cmd("kill", "send a signal to a container's init (default TERM)")
    k.add_argument("-a", "--all", action="store_true", help="signal every process of the container")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="TERM")
    d = cmd("delete", "delete a stopped container (with --force, any)")
    d.add_argument("-f", "--force", action="store_true")
    d.add_argument("id")
    ls = cmd("list", "list containers")
    ls.add_argument("-f", "--format", default="table", choices=("table", "json"))
    ls.add_argument("-q", "--quiet", action="store_true")
    sp = cmd("spec", "write a default config.json")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("--rootless", action="store_true")
    cmd("features", "print the features this runtime supports, as JSON")
    return p


def _create_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("-b", "--bundle", default=".")
    c.add_argument("--pid-file", default=None)
    c.add_argument("--console-socket", default=None)
    c.add_argument("--no-pivot", action="store_true")
    c.add_argument("--no-new-keyring", action="store_true")
    c.add_argument("--preserve-fds", type=int, default=0)
    c.add_argument("id")


def _create_options(a: argparse.Namespace):
    from .container import CreateOptions

    if a.preserve_fds < 0:
        raise PyociError("--preserve-fds must not be negative")
    return CreateOptions(bundle=a.bundle, pid_file=a.pid_file, console_socket=a.console_socket,
                         no_pivot=a.no_pivot, no_new_keyring=a.no_new_keyring, preserve_fds=a.preserve_fds)


def do_create(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .container import create

    create(store, a.id, _create_options(a), log)
    return 0


def do_run(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .foreground import run

    return run(store, a.id, _create_options(a), log, detach=a.detach, keep=a.keep)


def do_start(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .container import start

    start(store, a.id, log)
    return 0


def do_state(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .state import oci_state

    print(json.dumps(oci_state(store, store.load(a.id)), indent=2))
    return 0


def do_kill(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .container import kill, parse_signal

    kill(store, a.id, parse_signal(a.signal), a.all)
    return 0


def do_delete(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .container import delete

    delete(store, a.id, a.force, log)
    return 0


def do_list(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .state import oci_state

    states = []
    for cid in store.ids():
        try:
            states.append(oci_state(store, store.load(cid)))
        except PyociError:
            continue  # deleted while we looked
    if a.quiet:
        print("\n".join(s["id"] for s in states))
    elif a.format == "json":
        print(json.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def do_spec(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .defaults import default_config

    path = os.path.join(a.bundle, "config.json")
    if os.path.exists(path):
        raise PyociError(f"{path} exists: remove it first")
    with open(path, "w") as f:
        json.dump(default_config(rootless=a.rootless), f, indent=2)
        f.write("\n")
    return 0


def do_features(a: argparse.Namespace, store: Store, log: Logger) -> int:
    from .features import features

    print(json.dumps(features(), indent=2))
    return 0


COMMANDS = {
    "create": do_create, "run": do_run, "start": do_start, "state": do_state, "kill": do_kill,
    "delete": do_delete, "list": do_list, "spec": do_spec, "features": do_features,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log = Logger(args.log, args.log_format, args.debug)
    if args.version:
        print(f"pyoci version {__version__}\nspec: {OCI_VERSION}")
        return 0
    if not args.command:
        _parser().print_help()
        return 0
    where = args.command + (f" {args.id}" if getattr(args, "id", None) else "")
    try:
        if args.systemd_cgroup and not os.path.isdir("/run/systemd/system"):
            raise PyociError("--systemd-cgroup: systemd is not running on this host; use cgroupfs (drop the flag)")
        return COMMANDS[args.command](args, Store(args.root), log)
    except PyociError as exc:
        log.error(f"pyoci: {where}: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line unless the user asked for the traceback
        if args.debug:
            raise
        log.error(f"pyoci: {where}: internal error: {exc!r} (run with --debug for details)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
