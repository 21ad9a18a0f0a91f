#!/usr/bin/env python3
"""Side-by-side benchmark of pyoci against runc (and crun, where it works) on one busybox bundle.

Run as root:  python3 bench/compare.py [--runs N] [--runtimes pyoci,runc,crun] [--json FILE]

Every runtime gets the same rootfs, its own --root and unique container ids. Runtimes are interleaved run by
run (in a rotating order) so that machine load falls on all of them alike. Each runtime call is a
posix_spawn'd child in its own session; wall time is measured around spawn..wait4, CPU time (user+sys) and
peak RSS come from the rusage wait4 returns for that child (its own process tree, as far as it reaps it).
Every call has a timeout (SIGKILL to its process group). Containers are force-deleted on every exit path,
and at the end the script checks that `list -q` is empty and that no cgroup or mount of ours is left.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import secrets
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX_BUNDLE = os.path.join(HERE, "..", "scripts", "busybox-bundle")
CGROUP_ROOT = "/sys/fs/cgroup"
KIB = 1024
PR_SET_CHILD_SUBREAPER = 36
MIB = 1024 * 1024
MEM_LIMITS = [8 * MIB, 4 * MIB, 2 * MIB, 1 * MIB, 512 * KIB, 256 * KIB]


def true_bundle(base: str) -> dict:
    """scripts/busybox-bundle's bundle at base, running /bin/true without a terminal: its config."""
    subprocess.run(["sh", BUSYBOX_BUNDLE, base, "/bin/true"], check=True, timeout=120,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    path = os.path.join(base, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    # runc 1.1 and crun 1.8 know runtime-spec 1.0.x; pyoci spec writes its own (newer) version, which
    # crun refuses ("unknown version specified"). The config uses nothing newer than 1.0.2.
    cfg["ociVersion"] = "1.0.2"
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return cfg


def exits_within(pid: int, timeout: float) -> bool:
    """Whether pid (a child of ours, not yet reaped) ends within timeout. Until it is reaped its pid is not
    reused, so a pidfd of it taken now is of that process even if it has ended."""
    pidfd = os.pidfd_open(pid)
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


# ---------------------------------------------------------------------------------------------------------
# Spawning and timing one call
# ---------------------------------------------------------------------------------------------------------

_watched: set[int] = set()  # process groups the watchdog kills when the timer fires
_fired = [False]


def _on_alarm(signum, frame):
    _fired[0] = True
    for pgid in list(_watched):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class Result:
    argv: list[str]
    rc: int  # exit code; negative: killed by that signal
    wall: float  # seconds
    cpu: float  # seconds, user + sys of the child and the descendants it reaped
    maxrss: int  # KiB, the largest RSS in that tree
    out: str = ""
    err: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def describe(self) -> str:
        what = "timed out" if self.timed_out else f"exit {self.rc}"
        msg = (self.err.strip() or self.out.strip()).replace("\n", " | ")
        return f"`{' '.join(self.argv)}`: {what}" + (f": {msg[:400]}" if msg else "")


# Why a C launcher: a child's ru_maxrss includes the high-water RSS of the memory it had before its execve, and
# a child of this Python process starts out with Python's (~20 MiB). That would hide every runtime's real peak
# RSS below a constant. So each call goes through this tiny launcher, which forks (from its own ~1 MiB image),
# execs the runtime, wait4s for it and writes the runtime's own rusage and wall time to a report file.
LAUNCHER_C = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec a, b;
    struct rusage ru;
    int status, fd;
    pid_t pid;

    if (argc < 3)
        return 127;
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 126;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid = fork();
    if (pid < 0)
        return 125;
    if (pid == 0) {
        execv(argv[2], argv + 2);
        dprintf(2, "launcher: execv %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            return 124;
    clock_gettime(CLOCK_MONOTONIC, &b);
    dprintf(fd, "%d %lld %lld %lld %ld\n", status,
            (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
            (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
            (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, ru.ru_maxrss);
    return 0;
}
"""


def build_launcher(tmp: str) -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src, exe = os.path.join(tmp, "launcher.c"), os.path.join(tmp, "launcher")
    with open(src, "w") as f:
        f.write(LAUNCHER_C)
    res = subprocess.run([cc, "-O2", "-o", exe, src], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    return exe if res.returncode == 0 else None


class Spawner:
    def __init__(self, scratch: str, launcher: str | None) -> None:
        self.scratch = scratch
        self.launcher = launcher
        self.n = 0
        self.env = dict(os.environ)

    def spawn(self, argv: list[str]) -> tuple[int, str, str, str]:
        self.n += 1
        out, err, rep = (os.path.join(self.scratch, f"{self.n}.{x}") for x in ("out", "err", "rep"))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, out, flags, 0o600),
                   (os.POSIX_SPAWN_OPEN, 2, err, flags, 0o600)]
        real = [self.launcher, rep, *argv] if self.launcher else argv
        pid = os.posix_spawn(real[0], real, self.env, file_actions=actions, setsid=True)
        return pid, out, err, rep

    @staticmethod
    def _collect(argv, paths, status, ru, wall, timed_out) -> Result:
        texts = []
        for path in paths:
            try:
                with open(path, errors="replace") as f:
                    texts.append(f.read())
                os.unlink(path)
            except OSError:
                texts.append("")
        report = texts[2].split()
        if len(report) == 5:  # the launcher's account of the runtime itself
            st, ns, ut, stime, rss = (int(x) for x in report)
            return Result(argv, os.waitstatus_to_exitcode(st), ns / 1e9, (ut + stime) / 1e6, rss,
                          texts[0], texts[1], timed_out)
        return Result(argv, os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss,
                      texts[0], texts[1], timed_out)

    def call(self, argv: list[str], timeout: float) -> Result:
        _fired[0] = False
        t0 = time.perf_counter()
        pid, *paths = self.spawn(argv)
        _watched.add(pid)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            _, status, ru = os.wait4(pid, 0)
            wall = time.perf_counter() - t0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _watched.discard(pid)
        return self._collect(argv, paths, status, ru, wall, _fired[0])

    def call_many(self, argvs: list[list[str]], timeout: float) -> tuple[float, list[Result]]:
        """Starts all at once, waits for all; returns the wall time until the last one ended."""
        _fired[0] = False
        t0 = time.perf_counter()
        started = []
        try:
            for argv in argvs:
                pid, *paths = self.spawn(argv)
                _watched.add(pid)
                started.append((argv, pid, paths))
            signal.setitimer(signal.ITIMER_REAL, timeout)
            pending = {pid for _, pid, _ in started}
            done = {}
            while pending:
                pid, status, ru = os.wait4(-1, 0)
                if pid in pending:
                    done[pid] = (status, ru, time.perf_counter() - t0)
                    pending.discard(pid)
            wall = time.perf_counter() - t0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for _, pid, _ in started:
                _watched.discard(pid)
        results = []
        for argv, pid, paths in started:
            status, ru, w = done[pid]
            results.append(self._collect(argv, paths, status, ru, w, _fired[0]))
        return wall, results


# ---------------------------------------------------------------------------------------------------------
# Runtimes
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Runtime:
    name: str
    binary: str
    root: str
    live: set[str] = field(default_factory=set)  # ids that may still exist

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]


class Bench:
    def __init__(self, args, tmp: str) -> None:
        self.args = args
        self.tmp = tmp
        self.launcher = build_launcher(tmp)
        self.sp = Spawner(os.path.join(tmp, "io"), self.launcher)
        os.makedirs(self.sp.scratch)
        self.prefix = f"pyocibench-{os.getpid()}-{secrets.token_hex(2)}-"
        self.counter = 0
        self.runtimes: list[Runtime] = []  # the ones that work
        self.touched: list[Runtime] = []  # every one we ran anything with (for cleanup)
        self.skipped: dict[str, str] = {}
        self.samples: dict[str, dict[str, list[float]]] = {}  # metric → runtime → values
        self.problems: list[str] = []
        self.memlimit: dict[str, dict[int, dict]] = {}
        self.bundles: dict[str, str] = {}
        self.floor: dict[str, float] = {}  # runtime → CPU of its last --version, read against the calls after it

    # -- helpers --------------------------------------------------------------------------------------------
    def new_id(self, rt: Runtime, tag: str) -> str:
        self.counter += 1
        cid = f"{self.prefix}{tag}-{self.counter}"
        rt.live.add(cid)
        return cid

    def add(self, metric: str, rt: Runtime, value: float) -> None:
        self.samples.setdefault(metric, {}).setdefault(rt.name, []).append(value)

    def problem(self, rt: Runtime, what: str, res: Result | None = None, text: str = "") -> None:
        line = f"{rt.name}: {what}" + (f": {res.describe()}" if res else "") + (f": {text}" if text else "")
        self.problems.append(line)
        print(f"  ! {line}", file=sys.stderr)

    def call(self, rt: Runtime, *args: str, timeout: float | None = None) -> Result:
        return self.sp.call(rt.argv(*args), timeout or self.args.timeout)

    def force_delete(self, rt: Runtime, cid: str) -> None:
        res = self.call(rt, "delete", "--force", cid, timeout=30)
        if res.ok or "not exist" in res.err or "does not exist" in res.err:
            rt.live.discard(cid)

    def order(self, i: int) -> list[Runtime]:
        k = i % len(self.runtimes)
        return self.runtimes[k:] + self.runtimes[:k]

    # -- bundles ----------------------------------------------------------------------------------------------
    def make_bundles(self) -> None:
        base = os.path.join(self.tmp, "bundle")
        cfg = true_bundle(base)
        cfg["root"]["path"] = os.path.join(base, "rootfs")  # shared by the variants below
        variants = {"true": cfg}
        sleep = copy.deepcopy(cfg)
        sleep["process"]["args"] = ["/bin/sleep", "1000"]
        variants["sleep"] = sleep
        for limit in MEM_LIMITS:
            m = copy.deepcopy(cfg)
            m["process"]["args"] = ["/bin/sh", "-c", "echo hi"]
            m.setdefault("linux", {}).setdefault("resources", {})["memory"] = {"limit": limit, "swap": limit}
            variants[f"mem{limit}"] = m
        for name, c in variants.items():
            d = base if name == "true" else os.path.join(self.tmp, f"bundle-{name}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(c, f, indent=2)
            self.bundles[name] = d

    # -- runtimes -----------------------------------------------------------------------------------------------
    def probe(self, names: list[str]) -> None:
        for name in names:
            binary = shutil.which(name)
            if not binary:
                self.skipped[name] = "not installed"
                continue
            root = os.path.join(self.tmp, f"root-{name}")
            os.makedirs(root, mode=0o700)
            rt = Runtime(name, binary, root)
            self.touched.append(rt)
            cid = self.new_id(rt, "probe")
            res = self.call(rt, "run", "--bundle", self.bundles["true"], cid, timeout=30)
            if res.ok:
                rt.live.discard(cid)
                self.runtimes.append(rt)
                # a second, untimed run as warm-up (page cache, dentries)
                cid = self.new_id(rt, "warm")
                if self.call(rt, "run", "--bundle", self.bundles["true"], cid).ok:
                    rt.live.discard(cid)
            else:
                first = (res.err.strip() or res.out.strip() or f"exit {res.rc}").splitlines()[-1]
                self.skipped[name] = f"cannot run a container here: {first}"
                print(f"  skipping {name}: {self.skipped[name]}", file=sys.stderr)
            if not res.ok:
                self.cleanup_runtime(rt)

    # -- the measurements -------------------------------------------------------------------------------------
    def m_run(self, rt: Runtime) -> None:
        cid = self.new_id(rt, "run")
        res = self.call(rt, "run", "--bundle", self.bundles["true"], cid)
        if not res.ok:
            return self.problem(rt, "run /bin/true", res)
        rt.live.discard(cid)
        self.add("run.wall", rt, res.wall)
        self.add("run.cpu", rt, res.cpu)
        self.add("rss.run", rt, res.maxrss)

    def create_true(self, rt: Runtime, cid: str) -> tuple[Result, int]:
        """create of the /bin/true bundle: the call, and the pid of the container's init (0 if it failed)."""
        pid_file = os.path.join(self.tmp, f"{cid}.pid")
        res = self.call(rt, "create", "--bundle", self.bundles["true"], "--pid-file", pid_file, cid)
        if not res.ok:
            self.problem(rt, "create", res)
            return res, 0
        with open(pid_file) as f:
            return res, int(f.read())

    def reap(self, rt: Runtime, init: int) -> os.struct_rusage | None:
        """Waits (within the timeout) for a started container's init to end and reaps it (it is our child: the
        bench is its subreaper): its rusage, or None once the problem is told."""
        if not exits_within(init, self.args.timeout):
            self.problem(rt, "wait", text=f"the container still runs after {self.args.timeout}s")
            return None
        try:
            return os.wait4(init, 0)[2]
        except ChildProcessError:
            self.problem(rt, "the container's init was not reparented to the bench (subreaper)")
            return None

    def m_lifecycle(self, rt: Runtime) -> None:
        """create, start, wait, delete, as engines drive a runtime: conmon and containerd's shim are the
        container init's subreaper and wait for it (this process is, too), not polling `state` (measured on
        its own below). CPU: the calls' own, and the init's until it is reaped: runc's init is `runc init`,
        a second Go start-up that create's rusage does not include; pyoci's is the C executor."""
        cid = self.new_id(rt, "life")
        t0 = time.perf_counter()
        res, init = self.create_true(rt, cid)
        calls: list[Result] = [res]
        if not init:
            return
        res = self.call(rt, "start", cid)
        calls.append(res)
        if not res.ok:
            return self.problem(rt, "start", res)
        ru = self.reap(rt, init)
        if ru is None:
            return
        res = self.call(rt, "delete", cid)
        calls.append(res)
        if not res.ok:
            return self.problem(rt, "delete (stopped container)", res)
        rt.live.discard(cid)
        wall = time.perf_counter() - t0
        init_cpu = ru.ru_utime + ru.ru_stime
        self.add("lifecycle.wall", rt, wall)
        self.add("lifecycle.cpu", rt, sum(c.cpu for c in calls) + init_cpu)
        self.add("init.cpu", rt, init_cpu)
        for c in calls:
            step = c.argv[3]
            self.add(f"{step}.wall", rt, c.wall)
            self.add(f"{step}.cpu", rt, c.cpu)
            self.add(f"rss.{step}", rt, c.maxrss)

    def m_sequential(self, rt: Runtime) -> None:
        n = self.args.seq
        t0 = time.perf_counter()
        cpu = 0.0
        failed = 0
        for _ in range(n):
            cid = self.new_id(rt, "seq")
            res = self.call(rt, "run", "--bundle", self.bundles["true"], cid)
            cpu += res.cpu
            if res.ok:
                rt.live.discard(cid)
            else:
                failed += 1
                if failed <= 3:
                    self.problem(rt, "sequential run", res)
        wall = time.perf_counter() - t0
        if failed:
            self.problem(rt, f"{failed} of {n} sequential runs failed; sample dropped")
            return
        self.add("seq.wall", rt, wall)
        self.add("seq.cpu", rt, cpu)

    def m_concurrent(self, rt: Runtime) -> None:
        n = self.args.concurrent
        ids = [self.new_id(rt, "conc") for _ in range(n)]
        argvs = [rt.argv("run", "--bundle", self.bundles["true"], cid) for cid in ids]
        wall, results = self.sp.call_many(argvs, self.args.timeout * 4)
        bad = [r for r in results if not r.ok]
        for cid, r in zip(ids, results):
            if r.ok:
                rt.live.discard(cid)
        for r in bad[:3]:
            self.problem(rt, "concurrent run", r)
        if bad:
            self.problem(rt, f"{len(bad)} of {n} concurrent runs failed; sample dropped")
            return
        self.add("conc.wall", rt, wall)
        self.add("conc.cpu", rt, sum(r.cpu for r in results))

    def start_sleeper(self, rt: Runtime) -> str | None:
        cid = self.new_id(rt, "sleep")
        res = self.call(rt, "create", "--bundle", self.bundles["sleep"], cid)
        if not res.ok:
            self.problem(rt, "create (sleep 1000)", res)
            return None
        res = self.call(rt, "start", cid)
        if not res.ok:
            self.problem(rt, "start (sleep 1000)", res)
            return None
        return cid

    def timed(self, rt: Runtime, key: str, *args: str) -> Result | None:
        """One call on the running container, recorded as key.wall, key.cpu and rss.key if it succeeds."""
        res = self.call(rt, *args)
        if not res.ok:
            self.problem(rt, f"{key} (running container)", res)
            return None
        self.add(f"{key}.wall", rt, res.wall)
        self.add(f"{key}.cpu", rt, res.cpu)
        self.add(f"rss.{key}", rt, res.maxrss)
        if key != "exec" and rt.name in self.floor:
            self.add(f"above.{key}", rt, res.cpu - self.floor[rt.name])
        return res

    def m_state(self, rt: Runtime, cid: str) -> None:
        res = self.timed(rt, "state", "state", cid)
        if not res:
            return
        try:
            status = json.loads(res.out)["status"]
        except (ValueError, KeyError, TypeError) as exc:
            return self.problem(rt, "state: unparsable output", text=f"{exc}: {res.out[:200]!r}")
        if status != "running":
            self.problem(rt, "state of the sleep 1000 container", text=f"status {status!r}, expected 'running'")

    def m_exec(self, rt: Runtime, cid: str) -> None:
        self.timed(rt, "exec", "exec", cid, "/bin/true")

    def m_kill(self, rt: Runtime, cid: str) -> None:
        # signal 0: the whole of kill's work (state, checks, the signal) and the container goes on
        self.timed(rt, "kill", "kill", cid, "0")

    def m_version(self, rt: Runtime) -> None:
        """The floor: a call that starts the runtime and does nothing (pyoci: the interpreter's start-up and
        the command line), against which state, kill, start and delete are read."""
        res = self.sp.call([rt.binary, "--version"], self.args.timeout)
        if not res.ok:
            return self.problem(rt, "--version", res)
        self.add("version.wall", rt, res.wall)
        self.add("version.cpu", rt, res.cpu)
        self.floor[rt.name] = res.cpu

    def m_ps(self, rt: Runtime, cid: str) -> None:
        # json (the pids) is what containerd's shim asks for; the table form runs the host's ps(1)
        res = self.timed(rt, "ps", "ps", "--format", "json", cid)
        if res is None:
            return
        try:
            pids = json.loads(res.out)
        except ValueError:
            pids = None
        if not isinstance(pids, list) or len(pids) != 1:
            self.problem(rt, "ps of the sleep 1000 container", text=f"expected one pid: {res.out.strip()!r}")

    def m_above_floor(self, rt: Runtime) -> None:
        """start and delete, each right after a `--version`: what each costs above the floor measured beside it.
        A floor measured apart from them is not the same call: `--version` costs a quarter more CPU after
        another runtime's run than after a call of its own runtime, because of what is still in the caches."""
        cid = self.new_id(rt, "pair")
        _, init = self.create_true(rt, cid)
        if not init:
            return
        for step in ("start", "delete"):
            floor = self.sp.call([rt.binary, "--version"], self.args.timeout)
            if not floor.ok:
                return self.problem(rt, "--version", floor)
            res = self.call(rt, step, cid)
            if not res.ok:
                return self.problem(rt, f"{step} (after --version)", res)
            self.add(f"above.{step}", rt, res.cpu - floor.cpu)
            if step == "start" and self.reap(rt, init) is None:
                return
        rt.live.discard(cid)

    def m_memlimit(self, rt: Runtime, limit: int) -> None:
        cid = self.new_id(rt, "mem")
        res = self.call(rt, "run", "--bundle", self.bundles[f"mem{limit}"], cid, timeout=30)
        ok = res.ok and "hi" in res.out.split()
        if res.ok:
            rt.live.discard(cid)
        self.memlimit.setdefault(rt.name, {})[limit] = {
            "ok": ok, "rc": res.rc, "timed_out": res.timed_out, "stdout": res.out.strip()[:200],
            "stderr": res.err.strip()[:600], "wall": res.wall}

    # -- the whole thing ----------------------------------------------------------------------------------------
    def run(self) -> None:
        runs = self.args.runs
        total_steps = 6
        print(f"[1/{total_steps}] run /bin/true and create/start/wait/delete, {runs} runs", file=sys.stderr)
        for i in range(runs):
            for rt in self.order(i):
                self.m_run(rt)
            for rt in self.order(i + 1):
                self.m_lifecycle(rt)
        print(f"[2/{total_steps}] {self.args.seq} sequential runs, {runs} runs", file=sys.stderr)
        for i in range(runs):
            for rt in self.order(i):
                self.m_sequential(rt)
        print(f"[3/{total_steps}] {self.args.concurrent} concurrent runs, {runs} runs", file=sys.stderr)
        for i in range(runs):
            for rt in self.order(i):
                self.m_concurrent(rt)
        print(f"[4/{total_steps}] --version, and state, kill 0, exec /bin/true and ps of a running container, "
              f"{runs * 3} calls each", file=sys.stderr)
        sleepers = {}
        try:
            for rt in self.runtimes:
                cid = self.start_sleeper(rt)
                if cid:
                    sleepers[rt.name] = cid
            for i in range(runs * 3):
                for rt in self.order(i):
                    self.m_version(rt)
                    if rt.name in sleepers:
                        self.m_state(rt, sleepers[rt.name])
                        self.m_kill(rt, sleepers[rt.name])
                        self.m_exec(rt, sleepers[rt.name])
                        self.m_ps(rt, sleepers[rt.name])
        finally:
            for rt in self.runtimes:
                if rt.name in sleepers:
                    res = self.call(rt, "delete", "--force", sleepers[rt.name], timeout=30)
                    if res.ok:
                        rt.live.discard(sleepers[rt.name])
                    else:
                        self.problem(rt, "delete --force (running sleep 1000)", res)
        print(f"[5/{total_steps}] start and delete, each right after a --version, {runs * 3} calls each",
              file=sys.stderr)
        for i in range(runs * 3):
            for rt in self.order(i):
                self.m_above_floor(rt)
        print(f"[6/{total_steps}] smallest memory limit for sh -c 'echo hi'", file=sys.stderr)
        for limit in MEM_LIMITS:
            for rt in self.runtimes:
                self.m_memlimit(rt, limit)

    # -- cleanup and leftovers -------------------------------------------------------------------------------
    def cleanup_runtime(self, rt: Runtime) -> None:
        for cid in sorted(rt.live):
            self.force_delete(rt, cid)

    def cleanup(self) -> list[str]:
        leftovers = []
        for rt in self.touched:
            self.cleanup_runtime(rt)
            if not os.path.isdir(rt.root):
                continue
            res = self.call(rt, "list", "-q", timeout=30)
            ids = res.out.split()
            for cid in ids:
                leftovers.append(f"{rt.name}: container {cid} still listed; force-deleting")
                self.force_delete(rt, cid)
            if ids and self.call(rt, "list", "-q", timeout=30).out.split():
                leftovers.append(f"{rt.name}: `list -q` still not empty after delete --force")
            if not res.ok:
                leftovers.append(f"{rt.name}: {res.describe()}")
        # cgroups named after our ids (pyoci: /pyoci-<id>; runc: /<id> or <own cgroup>/<id>)
        for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
            depth = dirpath[len(CGROUP_ROOT):].count("/")
            for d in list(dirnames):
                if d.startswith(self.prefix):
                    path = os.path.join(dirpath, d)
                    leftovers.append(f"cgroup left behind: {path}")
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass
                    dirnames.remove(d)
            if depth >= 5:
                dirnames[:] = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if self.tmp in line:
                    leftovers.append(f"mount left behind: {line.split()[4]}")
        while True:  # the detached containers' inits, ours to reap since they were orphaned
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        return leftovers


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------

# metric → (label, unit, scale from the stored value)
METRICS = [
    ("run.wall", "run /bin/true: wall", "ms", 1e3),
    ("run.cpu", "run /bin/true: CPU", "ms", 1e3),
    ("lifecycle.wall", "create+start+wait+delete: wall", "ms", 1e3),
    ("lifecycle.cpu", "create+start+wait+delete: CPU", "ms", 1e3),
    ("create.wall", "  create: wall", "ms", 1e3),
    ("start.wall", "  start: wall", "ms", 1e3),
    ("delete.wall", "  delete: wall", "ms", 1e3),
    ("create.cpu", "  create: CPU", "ms", 1e3),
    ("init.cpu", "  container init until reaped: CPU", "ms", 1e3),
    ("start.cpu", "  start: CPU", "ms", 1e3),
    ("delete.cpu", "  delete: CPU", "ms", 1e3),
    ("seq.wall", "{seq} sequential runs: wall", "s", 1),
    ("seq.cpu", "{seq} sequential runs: CPU", "s", 1),
    ("conc.wall", "{conc} concurrent runs: wall", "s", 1),
    ("conc.cpu", "{conc} concurrent runs: CPU", "s", 1),
    ("version.wall", "--version (the floor): wall", "ms", 1e3),
    ("version.cpu", "--version (the floor): CPU", "ms", 1e3),
    ("state.wall", "state (running): wall", "ms", 1e3),
    ("state.cpu", "state (running): CPU", "ms", 1e3),
    ("kill.wall", "kill 0 (running): wall", "ms", 1e3),
    ("kill.cpu", "kill 0 (running): CPU", "ms", 1e3),
    ("exec.wall", "exec /bin/true (running): wall", "ms", 1e3),
    ("exec.cpu", "exec /bin/true (running): CPU", "ms", 1e3),
    ("ps.wall", "ps --format json (running): wall", "ms", 1e3),
    ("ps.cpu", "ps --format json (running): CPU", "ms", 1e3),
    ("above.state", "state above the --version before it: CPU", "ms", 1e3),
    ("above.kill", "kill 0 above the --version before it: CPU", "ms", 1e3),
    ("above.ps", "ps above the --version before it: CPU", "ms", 1e3),
    ("above.start", "start above the --version before it: CPU", "ms", 1e3),
    ("above.delete", "delete above the --version before it: CPU", "ms", 1e3),
    ("rss.create", "peak RSS create", "MiB", 1 / 1024),
    ("rss.start", "peak RSS start", "MiB", 1 / 1024),
    ("rss.state", "peak RSS state", "MiB", 1 / 1024),
    ("rss.exec", "peak RSS exec (incl. /bin/true)", "MiB", 1 / 1024),
    ("rss.ps", "peak RSS ps", "MiB", 1 / 1024),
    ("rss.delete", "peak RSS delete", "MiB", 1 / 1024),
    ("rss.run", "peak RSS run (incl. container)", "MiB", 1 / 1024),
]


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit in ("s",):
        return f"{v:.2f}"
    if unit == "n":
        return f"{v:g}"
    return f"{v:.1f}"


def summarize(b: Bench) -> dict:
    names = [rt.name for rt in b.runtimes]
    out = {"metrics": {}, "memlimit": {}}
    for key, label, unit, scale in METRICS:
        per = {}
        for name in names:
            vals = [v * scale for v in b.samples.get(key, {}).get(name, [])]
            per[name] = {"median": statistics.median(vals) if vals else None, "min": min(vals) if vals else None,
                         "n": len(vals), "samples": vals}
        # above.*: a difference, read against its own target (1 ms), not as a ratio
        out["metrics"][key] = {"label": label.format(seq=b.args.seq, conc=b.args.concurrent).strip(),
                               "unit": unit, "runtimes": per,
                               "ratios": {} if key.startswith("above.") else ratios(per, names, "median")}
    smallest = {}
    for name in names:
        results = b.memlimit.get(name, {})
        oks = [lim for lim, r in results.items() if r["ok"]]
        smallest[name] = min(oks) // KIB if oks else None
        out["memlimit"][name] = {str(lim // KIB): r for lim, r in results.items()}
    per = {n: {"median": smallest[n], "min": smallest[n], "n": 1, "samples": [smallest[n]]} for n in names}
    out["metrics"]["memlimit.smallest"] = {"label": "smallest memory limit OK", "unit": "KiB", "runtimes": per,
                                           "ratios": ratios(per, names, "median")}
    return out


def ratios(per: dict, names: list[str], key: str) -> dict:
    r = {}
    if "pyoci" not in names:
        return r
    p = per["pyoci"][key]
    for other in names:
        if other == "pyoci":
            continue
        o = per[other][key]
        r[f"pyoci/{other}"] = (p / o) if (p is not None and o) else None
    return r


def target(key: str) -> float | None:
    """Issue 20's bar for a metric: pyoci/runc at most this, or for above.* at most this many ms; None: no bar."""
    if key.split(".")[0] in ("run", "exec", "seq", "conc"):
        return 0.9
    if key.startswith(("lifecycle.", "rss.", "above.")):
        return 1.0
    return None


def verdict(key: str, m: dict) -> str:
    if key == "memlimit.smallest":
        v = m["runtimes"]["pyoci"]["median"]
        return "" if v is None else ("ok" if v <= 512 else "MISS")
    bar = target(key)
    v = m["runtimes"]["pyoci"]["median"] if key.startswith("above.") else m["ratios"].get("pyoci/runc")
    return "" if bar is None or v is None else ("ok" if v <= bar else "MISS")


def print_table(b: Bench, summary: dict) -> None:
    names = [rt.name for rt in b.runtimes]
    others = [n for n in names if n != "pyoci"] if "pyoci" in names else []
    header = ["metric", "unit"] + [f"{n} med (min)" for n in names] + [f"pyoci/{o}" for o in others]
    if "runc" in others:
        header.append("target")
    rows = [header]
    for key, m in summary["metrics"].items():
        row = [m["label"] if key != "memlimit.smallest" else "smallest mem limit (sh -c 'echo hi')", m["unit"]]
        for n in names:
            st = m["runtimes"][n]
            if key == "memlimit.smallest":
                row.append("none OK" if st["median"] is None else f"{st['median']}")
            else:
                row.append(f"{fmt(st['median'], m['unit'])} ({fmt(st['min'], m['unit'])})")
        for o in others:
            v = m["ratios"].get(f"pyoci/{o}")
            row.append("-" if v is None else f"{v:.2f}")
        if "runc" in others:
            row.append(verdict(key, m))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print()
    # the memory-limit detail
    print("memory limit (limit = memory+swap) -> result of `run` of sh -c 'echo hi':")
    for n in names:
        cells = []
        for lim in MEM_LIMITS:
            r = b.memlimit.get(n, {}).get(lim)
            if r is None:
                continue
            cells.append(f"{lim // KIB}K:{'ok' if r['ok'] else ('timeout' if r['timed_out'] else 'rc=' + str(r['rc']))}")
        print(f"  {n:6} " + " ".join(cells))
    for n in names:
        for lim in MEM_LIMITS:
            r = b.memlimit.get(n, {}).get(lim)
            if r and not r["ok"]:
                msg = (r["stderr"] or r["stdout"] or "(no output)").replace("\n", " | ")
                print(f"    {n} {lim // KIB}K: {msg[:300]}")


def versions(b: Bench) -> dict:
    v = {}
    for rt in b.runtimes:
        res = b.sp.call([rt.binary, "--version"], 10)
        v[rt.name] = res.out.strip().splitlines()[0] if res.out.strip() else ""
    return v


def _on_term(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="repetitions of each measurement (default 10)")
    ap.add_argument("--runtimes", default="pyoci,runc,crun", help="comma-separated (default pyoci,runc,crun)")
    ap.add_argument("--json", metavar="FILE", help="also write all results and samples as JSON")
    ap.add_argument("--seq", type=int, default=100, help="containers in the sequential test (default 100)")
    ap.add_argument("--concurrent", type=int, default=20, help="containers in the concurrent test (default 20)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds for one runtime call (default 20)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("compare.py: must run as root", file=sys.stderr)
        return 2
    if args.runs < 1 or args.seq < 1 or args.concurrent < 1:
        print("compare.py: --runs, --seq and --concurrent must be >= 1", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.runtimes.split(",") if n.strip()]

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    # Orphaned container inits come to us, as they come to conmon or containerd's shim: m_lifecycle reaps
    # them and counts their CPU.
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"compare.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="pyoci-bench-")
    b = Bench(args, tmp)
    leftovers: list[str] = []
    vers: dict = {}
    interrupted = False
    t_start = time.monotonic()
    try:
        b.make_bundles()
        b.probe(names)
        vers = versions(b)
        if not b.runtimes:
            print("compare.py: no runtime can run containers here", file=sys.stderr)
            return 1
        b.run()
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: cleaning up", file=sys.stderr)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        leftovers = b.cleanup()
        if not any("mount left behind" in x for x in leftovers):
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        return 130
    elapsed = time.monotonic() - t_start

    summary = summarize(b)
    print()
    print(f"runs={args.runs}  seq={args.seq}  concurrent={args.concurrent}  cores={os.cpu_count()}  "
          f"elapsed={elapsed:.0f}s  load={os.getloadavg()[0]:.2f}")
    for n, v in vers.items():
        print(f"  {n}: {v}")
    for n, why in b.skipped.items():
        print(f"  NOTE: {n} skipped: {why}")
    if not b.launcher:
        print("  NOTE: no C compiler: peak RSS includes this script's own RSS (inherited across execve) and is "
              "not meaningful")
    print()
    print_table(b, summary)
    if b.problems:
        print("\nproblems while benchmarking:")
        for p in b.problems:
            print(f"  - {p}")
    print("\nleftovers: " + ("none (list -q empty, no cgroups or mounts of ours)" if not leftovers else ""))
    for x in leftovers:
        print(f"  - {x}")
    if args.json:
        doc = {"runs": args.runs, "seq": args.seq, "concurrent": args.concurrent, "elapsed_s": elapsed,
               "versions": vers, "skipped": b.skipped, "problems": b.problems, "leftovers": leftovers, **summary}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    return 1 if leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
