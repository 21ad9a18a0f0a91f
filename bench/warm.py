#!/usr/bin/env python3
"""What pyoci's create, start and delete cost by themselves: each call made through the library, in one
process that has imported every module and made a few containers first, so that neither the interpreter's
start-up nor an import is in the figure. A `pyoci` call pays those on top (compare.py measures it whole);
this is the part no trimming of the start-up or of imports can remove, the floor under the "create above
--version" figure.

Run as root, by a python that imports the pyoci to measure (the installed one: /opt/pyoci/venv/bin/python3):
    bench/warm.py [--runs N] [--json FILE] [--pyoci PATH]

CPU time is this process's and that of the children a call reaps (`create` reaps the executor, as a
`pyoci create` does, whose rusage compare.py reads), never the container's init, which the script reaps
between the calls. The user/system split comes from the kernel's tick sampling, which is only fair over
many calls: it is given for all of them together.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Callable

from compare import PR_SET_CHILD_SUBREAPER, exits_within, true_bundle  # bench/ is the script's directory

if TYPE_CHECKING:
    from pyoci.container import Runtime

WARM_UP = 5
INIT_TIMEOUT = 10


def reap(pid: int) -> None:
    """The init, which is this process's child once its parent (the executor) has exited, before `create`
    returns: we are its subreaper, as an engine's shim is."""
    if not exits_within(pid, INIT_TIMEOUT):
        raise TimeoutError(f"the init {pid} still runs after {INIT_TIMEOUT} s")
    os.waitpid(pid, 0)


def reap_after(rt: Runtime, cid: str) -> None:
    """Force-deletes the container `pyoci create` made, and reaps its init (our child, as above)."""
    from pyoci.errors import NotFoundError

    try:
        pid = rt.get(cid).pid
    except NotFoundError:  # never made: the round failed before it
        return
    rt.delete(cid, force=True)
    reap(pid)


def usage() -> tuple[float, float]:
    """User and system CPU in ms of this process and of the children it has reaped: `create` reaps the
    executor (the process that makes the namespaces and forks the init), whose CPU the rusage of a `pyoci
    create` includes too. The sums are exact; the split between the two is the kernel's tick sampling."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + children.ru_utime) * 1e3, (me.ru_stime + children.ru_stime) * 1e3


def child_cpu(argv: list[str]) -> float:
    """A command's CPU time in ms (its rusage, as compare.py reads it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3


def measure(runs: int, bundle: str, root: str, command: str) -> dict[str, dict[str, float]]:
    """Each round: create, start and delete through the library, and beside them a `pyoci create` of the
    same bundle less the `pyoci --version` made right before it, so that the two are read in the same
    stretch of the machine (its speed drifts by a fifth over minutes)."""
    from pyoci.container import Runtime

    rt = Runtime(root)
    cpu: dict[str, list[float]] = {"create": [], "start": [], "delete": [], "command": []}
    split = {name: [0.0, 0.0] for name in ("create", "start", "delete")}
    counting = False

    def timed(name: str, call: Callable[..., object], *args: object) -> object:
        before = usage()
        result = call(*args)
        user, system = (b - a for a, b in zip(before, usage()))
        if counting:
            cpu[name].append(user + system)
            split[name][0] += user
            split[name][1] += system
        return result

    for i in range(WARM_UP + runs):
        counting = i >= WARM_UP
        cid, other = f"warm-{os.getpid()}-{i}", f"warm-{os.getpid()}-{i}-command"
        try:
            floor = child_cpu([command, "--root", root, "--version"])
            above = child_cpu([command, "--root", root, "create", "--bundle", bundle, other]) - floor
            if counting:
                cpu["command"].append(above)
            container = timed("create", rt.create, cid, bundle)
            pid = container.pid
            timed("start", container.start)
            reap(pid)
            timed("delete", container.delete)
        finally:
            rt.delete(cid, force=True)
            reap_after(rt, other)
    return {name: {"median": statistics.median(values), "min": min(values),
                   **({"user_share": split[name][0] / max(sum(split[name]), 1e-9)} if name in split else {})}
            for name, values in cpu.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--pyoci", default=shutil.which("pyoci") or "pyoci", help="the pyoci command")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("warm.py: run as root", file=sys.stderr)
        return 2
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    tmp = tempfile.mkdtemp(prefix="pyoci-warm-")
    try:
        bundle = os.path.join(tmp, "bundle")
        true_bundle(bundle)
        results = measure(args.runs, bundle, os.path.join(tmp, "state"), args.pyoci)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"pyoci through the library, warm, {args.runs} runs: CPU ms median (min), user/system share")
    for name in ("create", "start", "delete"):
        r = results[name]
        share = r["user_share"]
        print(f"  {name:7} {r['median']:6.2f} ({r['min']:.2f})   user {share:.0%} / system {1 - share:.0%}")
    r = results["command"]
    print(f"`pyoci create` above the `--version` before it: {r['median']:.2f} ({r['min']:.2f}) ms, of which the "
          f"library's warm create is {results['create']['median'] / r['median']:.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
