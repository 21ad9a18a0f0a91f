"""The same bundle and command line under runc and pyoci: what the spec fixes must look the same from inside,
and what a runc user types must end the same way (issue 17: pyoci is a drop-in for runc). Each scenario runs
on both runtimes and the outcomes are compared, then checked against what runc 1.1.5 does."""
from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import select
import subprocess
import tempfile
import termios
import time
from typing import Any, Callable

import pytest

from conftest import TEMPLATES, wait_for

PROBE = ("id; hostname; echo $$; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; ulimit -n; umask; pwd; "
         "ls /dev; for f in /proc/timer_list /proc/keys /sys/firmware; do stat -c '%n %F' $f; done; "
         "touch /rootfile 2>/dev/null || echo root-ro; ls -1 /proc/self/fd | wc -l; "
         "grep -oE ' (/proc|/dev|/dev/pts|/dev/shm|/dev/mqueue|/sys) [^ ]+' /proc/self/mountinfo | sort")


def normalize(text: str) -> str:
    return re.sub(r"Seccomp:\s+\d+\n", "", text)  # runc's default profile is not part of the bundle


def on_both(pyoci, runc, scenario: Callable[[Any], object]) -> object:
    """scenario(runtime) run with pyoci and with runc; their outcomes must be equal: returns it."""
    ours, theirs = scenario(pyoci), scenario(runc)
    assert ours == theirs, f"pyoci: {ours!r}\nrunc:  {theirs!r}"
    return ours


def on_terminal(rt, *args: str, timeout: float = 30) -> tuple[int, str, str]:
    """rt's command with a new pty as its controlling terminal and stdin/stdout, as a user at a terminal runs
    it (runc's `run` of a config with process.terminal needs one): its exit status, what the terminal showed
    (without carriage returns: under runc the process may write before runc clears ONLCR on its pty, and runc
    copies before it makes our terminal raw, so under load a line may end in \\r\\n or \\r\\r\\n) and its
    stderr."""
    master, slave = os.openpty()
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([rt.binary, "--root", str(rt.root), *args], stdin=slave, stdout=slave, stderr=err,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every end of the terminal is closed
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        code = proc.wait(max(deadline - time.monotonic(), 1))
        err.seek(0)
        return code, out.decode().replace("\r", ""), err.read().decode()
    finally:
        os.close(master)
        err.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_outcome(rt, b, *flags: str) -> tuple[int, str]:
    """`run` of bundle b in the foreground: its exit status and output."""
    proc = rt("run", *flags, "--bundle", str(b), rt.new_id(), check=False)
    return proc.returncode, proc.stdout


def stopped(rt, cid: str) -> Callable[[], bool]:
    return lambda: rt.state(cid)["status"] == "stopped"


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("edit", [
    None,
    lambda c: c["process"].update(user={"uid": 1000, "gid": 1000, "additionalGids": [10]}, cwd="/tmp"),
    lambda c: c["process"].update(capabilities={k: ["CAP_CHOWN", "CAP_SYS_ADMIN"] for k in
                                               ("bounding", "effective", "permitted", "inheritable")}),
])
def test_same_view_as_runc(pyoci, runc, bundle, edit, template):
    b = bundle(["sh", "-c", PROBE], edit)
    ours = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    theirs = runc("run", "--bundle", str(b), runc.new_id(), check=False)
    assert (ours.returncode, normalize(ours.stdout)) == (theirs.returncode, normalize(theirs.stdout))


def test_runc_specs_own_config_runs_unchanged(pyoci, runc, runc_spec, rootfs, tmp_path):
    """`runc spec && pyoci run`: the template lists ambient capabilities without inheritable ones, which the
    kernel refuses to raise; they are skipped with one warning, as runc skips them (item 1)."""
    cfg = copy.deepcopy(runc_spec)
    assert cfg["process"]["terminal"] and cfg["process"]["capabilities"]["ambient"]
    cfg["root"]["path"] = str(rootfs)
    cfg["process"]["args"] = ["sh", "-c", "grep Cap /proc/self/status; tty"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    code, out = on_both(pyoci, runc, lambda rt: on_terminal(rt, "run", "--bundle", str(tmp_path), rt.new_id())[:2])
    assert code == 0 and "CapAmb:\t0000000000000000\n/dev/pts/0\n" in out
    cid = pyoci.new_id()
    assert on_terminal(pyoci, "run", "--bundle", str(tmp_path), cid)[2] == (
        f"pyoci: run {cid}: warning: process.capabilities.ambient: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE "
        "not in both the inheritable and permitted sets: not raised\n")


def test_kill_signal_0_asks_whether_the_container_is_alive(pyoci, runc, bundle):
    """`kill ID 0` (item 2): success while the container is created or running, `container not running`
    once it has stopped."""
    b = bundle(["sleep", "1000"])

    def scenario(rt):
        cid = rt.new_id()
        rt("create", "--bundle", str(b), cid)
        codes = [rt("kill", cid, "0", check=False).returncode]
        rt("start", cid)
        codes.append(rt("kill", cid, "0", check=False).returncode)
        rt("kill", cid, "KILL")
        wait_for(stopped(rt, cid), f"{cid} to stop")
        late = rt("kill", cid, "0", check=False)
        return codes, late.returncode, "container not running" in late.stderr

    assert on_both(pyoci, runc, scenario) == ([0, 0], 1, True)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_read_only_dev_with_mounts_below_it(pyoci, runc, bundle, template):
    """/dev mounted `ro` with /dev/pts, /dev/shm, /dev/mqueue below it (item 3): read-only once they are in place."""
    b = bundle(["sh", "-c", "touch /dev/x 2>&1; echo > /dev/null && echo null-ok; ls /dev/pts; "
                "grep -E ' /dev(/pts|/shm|/mqueue)? ' /proc/self/mountinfo | cut -d' ' -f5,6"],
               lambda c: c["mounts"][1]["options"].append("ro"))
    code, out = on_both(pyoci, runc, lambda rt: run_outcome(rt, b))
    assert code == 0
    assert "touch: /dev/x: Read-only file system\nnull-ok\nptmx\n/dev ro,nosuid\n/dev/pts rw," in out


def test_the_users_stdio_is_its_own(pyoci, runc, bundle):
    """fds 0-2 are chowned to process.user before the switch (item 4): a non-root process can open
    /dev/stdout and /dev/stderr (pipes here) and its terminal (the pty of run and of exec -t, gid tty kept)."""
    user = {"uid": 1000, "gid": 1000}
    probe = "stat -L -c '%u' /proc/self/fd/1; echo to-stderr > /dev/stderr"
    b = bundle(["sh", "-c", probe], lambda c: c["process"].update(user=user))
    assert on_both(pyoci, runc, lambda rt: (lambda p: (p.returncode, p.stdout, p.stderr))(
        rt("run", "--bundle", str(b), rt.new_id(), check=False))) == (0, "1000\n", "to-stderr\n")
    tty = bundle(["sh", "-c", "stat -c '%u %g %a' $(tty)"], lambda c: c["process"].update(user=user, terminal=True))
    assert on_both(pyoci, runc, lambda rt: on_terminal(rt, "run", "--bundle", str(tty), rt.new_id())[:2]) == (
        0, "1000 5 620\n")
    b = bundle(["sleep", "1000"])

    def exec_tty(rt):
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(b), cid)
        return on_terminal(rt, "exec", "-t", "--user", "1000:1000", cid, "sh", "-c", "stat -c '%u %g' $(tty)")[:2]

    assert on_both(pyoci, runc, exec_tty) == (0, "1000 5\n")


@pytest.mark.parametrize("template", TEMPLATES)
def test_bind_sources_a_user_namespace_cannot_reach(pyoci, runc, bundle, open_rootfs, tmp_path, template):
    """A bind whose source lies under a 0700 host directory, in a container with a user namespace (item 5):
    the source is opened on the host, as runc does; exec into the container sees it too."""
    hidden = tmp_path / "hidden"
    (hidden / "m").mkdir(parents=True)
    (hidden / "m" / "f").write_text("data\n")
    hidden.chmod(0o700)
    os.mkdir(os.path.join(open_rootfs, "mnt", "m"))  # the mapped root may not make it in a rootfs root owns
    ids = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    def edit(c):
        c["root"]["path"] = open_rootfs
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"].update(uidMappings=ids, gidMappings=ids, resources={})
        c["mounts"] = [m for m in c["mounts"] if m["type"] != "cgroup"]
        c["mounts"].append({"destination": "/mnt/m", "type": "bind", "source": str(hidden / "m"),
                            "options": ["rbind", "ro"]})
    b = bundle(["sleep", "1000"], edit)

    def scenario(rt):
        cid = rt.new_id()
        created = rt("run", "-d", "--bundle", str(b), cid, check=False)
        if created.returncode:
            return created.returncode, created.stderr
        inside = rt("exec", cid, "sh", "-c", "cat /mnt/m/f; touch /mnt/m/f 2>&1; id -u", check=False)
        return inside.returncode, inside.stdout

    assert on_both(pyoci, runc, scenario) == (0, "data\ntouch: /mnt/m/f: Read-only file system\n0\n")


def test_update_memory_unlimited_after_a_swap_limit(pyoci, runc, bundle):
    """`update --memory -1` of a container with memory and memory+swap limits (item 6): both become unlimited
    (memory+swap first, or the kernel refuses the memory limit)."""
    b = bundle(["sleep", "1000"], lambda c: c["linux"].update(
        resources={"memory": {"limit": 100 << 20, "swap": 200 << 20}}))

    def scenario(rt):
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(b), cid)
        code = rt("update", "--memory", "-1", cid, check=False).returncode
        memory = json.loads(rt("events", "--stats", cid).stdout)["data"]["memory"]
        return code, memory["usage"]["limit"], memory["swap"]["limit"]

    code, limit, swap = on_both(pyoci, runc, scenario)
    assert code == 0 and limit == swap > 1 << 60


@pytest.fixture
def host_cgroup():
    """A cgroup made beforehand in every hierarchy (what a cgroupsPath may name), with a process to put in
    it; thawed, emptied and removed afterwards."""
    from pyoci.cgroups.make import hierarchies

    name = f"pyoci-test-{os.getpid()}-{time.monotonic_ns()}"
    dirs = [os.path.join(h.mountpoint, name) for h in hierarchies()]
    for d in dirs:
        os.mkdir(d)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset takes no task until they are set
            if os.path.exists(os.path.join(d, knob)):
                with open(os.path.join(os.path.dirname(d), knob)) as src, open(os.path.join(d, knob), "w") as dst:
                    dst.write(src.read())
    sleeper = subprocess.Popen(["sleep", "1000"])
    yield "/" + name, dirs, sleeper
    for d in dirs:
        for knob, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            if os.path.exists(os.path.join(d, knob)):
                with open(os.path.join(d, knob), "w") as f:
                    f.write(value)
    sleeper.kill()
    sleeper.wait()
    for d in dirs:
        wait_for(lambda: not os.path.isdir(d) or not open(os.path.join(d, "cgroup.procs")).read(), f"{d} empty")
        if os.path.isdir(d):
            os.rmdir(d)


def test_an_existing_cgroup_frozen_or_busy(pyoci, runc, bundle, host_cgroup):
    """A cgroupsPath naming a cgroup that exists: frozen, create fails at once instead of waiting for a thaw
    (item 7); with a process in it, create warns and goes on (item 16)."""
    path, dirs, sleeper = host_cgroup
    b = bundle(["true"], lambda c: c["linux"].update(cgroupsPath=path))
    for d in dirs:
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))

    def scenario(rt):
        proc = rt("run", "--bundle", str(b), rt.new_id(), check=False, timeout=20)
        return proc.returncode, "container's cgroup is not empty: 1 process(es) found" in proc.stderr

    assert on_both(pyoci, runc, scenario) == (0, True)
    freezer = next((d for d in dirs if "/freezer/" in d), None)
    knob, value = ("freezer.state", "FROZEN") if freezer else ("cgroup.freeze", "1")
    with open(os.path.join(freezer or next(d for d in dirs if "/freezer/" not in d), knob), "w") as f:
        f.write(value)

    def frozen(rt):
        proc = rt("run", "--bundle", str(b), rt.new_id(), check=False, timeout=20)
        return proc.returncode, "container's cgroup unexpectedly frozen" in proc.stderr

    assert on_both(pyoci, runc, frozen) == (1, True)


def test_exec_tells_its_own_failures_from_the_process_status(pyoci, runc, bundle, tmp_path):
    """exec exits 255 when the runtime fails (no such binary, a --pid-file it cannot write, no such
    container), else with the process's own status, 1 included (item 10)."""
    b = bundle(["sleep", "1000"])

    def scenario(rt):
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(b), cid)
        calls = [("exec", cid, "/nosuchcmd"), ("exec", "--pid-file", str(tmp_path / "no" / "pid"), cid, "true"),
                 ("exec", rt.new_id(), "true"), ("exec", cid, "false"), ("exec", cid, "sh", "-c", "exit 3")]
        return [rt(*call, check=False).returncode for call in calls]

    assert on_both(pyoci, runc, scenario) == [255, 255, 255, 1, 3]


def test_hooks_run_where_runc_runs_them(pyoci, runc, bundle, rootfs, tmp_path):
    """A hook naming a file of the bundle by a relative path (item 12): the runtime's hooks run in the bundle
    directory, createContainer in the rootfs directory."""
    out = tmp_path / "hooks.out"

    def edit(c):
        relative = {"path": "/bin/sh", "args": ["sh", "./lib/hook.sh"]}
        c["hooks"] = {kind: [relative] for kind in ("prestart", "createRuntime", "poststart", "poststop")}
        c["hooks"]["createContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", f"pwd >> {out}"]}]
    b = bundle(["true"], edit)
    (b / "lib").mkdir()
    (b / "lib" / "hook.sh").write_text(f"pwd >> {out}\n")

    def scenario(rt):
        out.write_text("")
        code = run_outcome(rt, b)[0]
        return code, out.read_text()

    assert on_both(pyoci, runc, scenario) == (0, f"{b}\n{b}\n{rootfs}\n{b}\n{b}\n")


def test_exec_process_file_as_runc_reads_it(pyoci, runc, bundle, tmp_path):
    """exec --process FILE (item 13): a file without user runs as root with the container's capabilities;
    one that cannot be used fails with 255, and pyoci's error names the file, not config.json."""
    b = bundle(["sleep", "1000"])
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"args": ["sh", "-c", "id; grep -E '^Cap(Eff|Bnd)' /proc/self/status"],
                                 "cwd": "/", "env": ["PATH=/bin"]}))
    broken = [tmp_path / f"broken{i}.json" for i in range(4)]
    for path, text in zip(broken, ['{"args": ["true"], "cwd": "/", "user": {"uid": "x"}}', "[]", "{",
                                   '{"args": ["true"]}']):
        path.write_text(text)

    def scenario(rt):
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(b), cid)
        ok = rt("exec", "--process", str(plain), cid, check=False)
        return ok.returncode, ok.stdout, [rt("exec", "-p", str(p), cid, check=False).returncode for p in broken]

    assert on_both(pyoci, runc, scenario) == (
        0, "uid=0(root) gid=0(root)\nCapEff:\t0000000020000420\nCapBnd:\t0000000020000420\n", [255] * 4)
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    errors = [pyoci("exec", "-p", str(p), cid, check=False).stderr for p in broken]
    assert errors == [f"pyoci: exec {cid}: --process {broken[0]}: user.uid: must be integer\n",
                      f"pyoci: exec {cid}: --process {broken[1]}: not a process object\n",
                      f"pyoci: exec {cid}: --process {broken[2]}: not JSON: Expecting property name enclosed in "
                      "double quotes: line 1 column 2 (char 1)\n",
                      f"pyoci: exec {cid}: --process {broken[3]}: must contain ['cwd'] properties\n"]


def test_exec_ignore_paused(pyoci, runc, bundle):
    """exec into a paused container is refused in runc's words; with --ignore-paused the process joins the
    frozen cgroup and runs once the container is resumed (item 14)."""
    b = bundle(["sleep", "1000"])

    def scenario(rt):
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(b), cid)
        rt("pause", cid)
        refused = rt("exec", cid, "true", check=False)
        late = subprocess.Popen([rt.binary, "--root", str(rt.root), "exec", "--ignore-paused", cid, "echo", "ran"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(json.loads(rt("ps", "--format", "json", cid).stdout)) == 2, "the frozen exec")
            waited = late.poll() is None
            rt("resume", cid)
            out, _ = late.communicate(timeout=30)
        finally:
            if late.poll() is None:
                late.kill()
                late.wait()
        return (refused.returncode, "cannot exec in a paused container (use --ignore-paused to override)" in
                refused.stderr, waited, late.returncode, out.decode())

    assert on_both(pyoci, runc, scenario) == (255, True, True, 0, "ran\n")


def test_log_file_and_debug_lines(pyoci, runc, bundle, tmp_path):
    """--log FILE is made on every call, a --log in a missing directory fails the call, and --debug writes
    level=debug lines for the steps of the work into it (item 15)."""
    b = bundle(["true"])

    def scenario(rt):
        quiet, missing, debug, as_json = (tmp_path / f"{rt.binary.rsplit('/', 1)[-1]}-{n}.log" for n in range(4))
        made = rt("--log", str(quiet), "list", check=False).returncode, quiet.exists() and quiet.read_text()
        refused = rt("--log", str(missing / "log"), "list", check=False).returncode
        rt("--debug", "--log", str(debug), "run", "--bundle", str(b), rt.new_id())
        rt("--debug", "--log", str(as_json), "--log-format", "json", "run", "--bundle", str(b), rt.new_id())
        lines = debug.read_text().splitlines()
        records = [json.loads(line) for line in as_json.read_text().splitlines()]
        return (made, refused, len(lines) > 5 and all("level=debug" in line for line in lines),
                len(records) > 5 and {r["level"] for r in records} == {"debug"})

    assert on_both(pyoci, runc, scenario) == ((0, ""), 1, True, True)
    proc = pyoci("--debug", "run", "--bundle", str(b), pyoci.new_id())
    assert "debug: plan[0]: close_fds: close the runtime's fds\n" in proc.stderr  # without --log: on stderr


def test_list_goes_on_past_damaged_states(pyoci, runc, bundle):
    """list with one container's state truncated, one empty and one unreadable (item 17): the others are
    listed and each damaged one is named in a warning; exit status 0."""
    b = bundle(["sleep", "1000"])

    def scenario(rt):
        ids = [rt.new_id() for _ in range(4)]
        for cid in ids:
            rt("run", "-d", "--bundle", str(b), cid)
        states = [rt.root / cid / "state.json" for cid in ids]
        kept = [path.read_bytes() for path in states]
        try:
            os.truncate(states[1], 20)
            states[2].write_bytes(b"")
            states[3].unlink()
            states[3].mkdir()
            shown = [rt("list", *flags, check=False) for flags in ((), ("-q",), ("--format", "json"))]
        finally:
            states[3].rmdir()
            for path, data in zip(states, kept):
                path.write_bytes(data)
        listed = [shown[1].stdout.split(), [s["id"] for s in json.loads(shown[2].stdout or "[]")],
                  [line.split()[0] for line in shown[0].stdout.splitlines()[1:]]]
        return ([p.returncode for p in shown], [found == ids[:1] for found in listed],
                [all(cid in p.stderr for cid in ids[1:]) for p in shown])

    assert on_both(pyoci, runc, scenario) == ([0, 0, 0], [True] * 3, [True] * 3)


def test_preserve_fds_past_the_open_ones_is_refused(pyoci, runc, bundle):
    """--preserve-fds counting fds that are not open (item 18): create refuses it at once, as runc does (pyoci's
    own fds, its container lock among them, used to fill the gap and reach the container, and start waited
    for that lock forever). exec refuses it too, where runc 1.1.5 goes on: the same gap would hand the exec'd
    process the lock."""
    b = bundle(["sleep", "1000"])
    assert on_both(pyoci, runc, lambda rt: rt("run", "--preserve-fds", "100000", "--bundle", str(b), rt.new_id(),
                                              check=False, timeout=20).returncode) == 1
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    proc = pyoci("exec", "--preserve-fds", "3", cid, "true", check=False, timeout=20)
    assert (proc.returncode, proc.stderr) == (
        255, f"pyoci: exec {cid}: --preserve-fds 3: fd 3 is not open: Bad file descriptor\n")


def test_messages_name_errnos_in_words_on_one_line(pyoci, runc, bundle, rootfs, tmp_path):
    """A program the kernel will not execute, the runtime itself as the program, an id with a newline
    (item 19): the same exit status as runc, and one line that says why in words."""
    notelf = tmp_path / "notelf"
    notelf.write_text("not a program\n")
    notelf.chmod(0o755)

    def with_notelf(c):
        c["mounts"].append({"destination": "/notelf", "type": "bind", "source": str(notelf), "options": ["bind"]})
    programs = [bundle(["/notelf"], with_notelf), bundle(["/proc/self/exe", "--version"])]
    sleeper = bundle(["sleep", "1000"], with_notelf)

    def scenario(rt):
        runs = [rt("run", "--bundle", str(b), rt.new_id(), check=False) for b in programs]
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(sleeper), cid)
        execs = [rt("exec", cid, "/notelf", check=False), rt("state", "a\nb", check=False)]
        return [(p.returncode, len(p.stderr.splitlines())) for p in runs + execs], \
            ["exec format error" in p.stderr.lower() for p in (runs[0], execs[0])]

    assert on_both(pyoci, runc, scenario) == ([(1, 1)] * 4, [True, True])
    cid = pyoci.new_id()
    proc = pyoci("run", "--bundle", str(programs[1]), cid, check=False)
    assert proc.stderr == "pyoci: exec /proc/self/exe: the runtime's executor, which runs no program of its " \
                          "own (CVE-2019-5736)\n"
    assert pyoci("run", "--bundle", str(programs[0]), pyoci.new_id(), check=False).stderr == \
        "pyoci: exec /notelf: Exec format error\n"
    assert pyoci("state", "a\nb", check=False).stderr == \
        'pyoci: state a\\nb: invalid container id "a\\nb": use 1-1024 of [A-Za-z0-9_+.-], no ".."\n'


# A program without libc (x86_64): makes the raw syscalls its arguments' numbers... no arguments needed: the
# numbers are fixed below; prints "NR RESULT" for each and exits. Nothing else runs under the filter.
SYSCALLS_PROBE = r"""
static long sys(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
static void put_num(long v)
{
    char buf[24];
    int i = sizeof buf;
    int neg = v < 0;
    if (neg)
        v = -v;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        buf[--i] = '-';
    sys(1, 1, (long)(buf + i), sizeof buf - i);
}
void _start(void)
{
    static const long numbers[] = {1000, 439, 79};
    for (unsigned i = 0; i < sizeof numbers / sizeof *numbers; i++) {
        put_num(numbers[i]);
        sys(1, 1, (long)" ", 1);
        put_num(sys(numbers[i], 0, 0, 0));
        sys(1, 1, (long)"\n", 1);
    }
    sys(60, 0, 0, 0);
}
"""


def test_seccomp_answers_enosys_for_syscalls_newer_than_the_profile(pyoci, runc, bundle, tmp_path):
    """A profile whose default is an errno and whose newest syscall is execveat (322 on x86_64) (item 11):
    syscall 1000 and faccessat2 (439) get ENOSYS, as from runc's stub, so that a C library falls back to an
    older call; getcwd (79), older and not allowed, still gets the default EPERM."""
    if os.uname().machine != "x86_64":
        pytest.skip("the probe is x86_64 code")
    source = tmp_path / "probe.c"
    source.write_text(SYSCALLS_PROBE)
    probe = tmp_path / "probe"
    subprocess.run(["cc", "-nostdlib", "-static", "-O1", "-fno-stack-protector", "-o", str(probe), str(source)],
                   check=True)
    allowed = ["read", "write", "exit", "exit_group", "execve", "execveat", "futex", "nanosleep", "sched_yield",
               "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack", "getpid", "gettid", "tgkill",
               "mmap", "munmap", "madvise", "close", "fcntl", "fstat", "newfstatat", "capget", "capset", "prctl",
               "getppid", "epoll_pwait", "epoll_ctl", "setgroups", "setresuid", "setresgid", "open", "openat", "readlinkat",
               "fchdir", "getdents64", "pread64", "brk", "arch_prctl", "setns", "mprotect", "fstatfs", "statfs"]

    def edit(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"}],
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
        c["mounts"].append({"destination": "/probe", "type": "bind", "source": str(probe), "options": ["bind"]})
    b = bundle(["/probe"], edit)
    assert on_both(pyoci, runc, lambda rt: run_outcome(rt, b)) == (0, "1000 -38\n439 -38\n79 -1\n")


def test_exec_user_with_a_cwd_only_root_can_enter(pyoci, runc, bundle, open_rootfs):
    """exec --user with a process.cwd that user may not enter (item 8): entered as root before the switch,
    as runc does; run with such a user and cwd the same."""
    os.mkdir(os.path.join(open_rootfs, "secret"), 0o700)

    def edit(c):
        c["root"]["path"] = open_rootfs
        c["process"]["cwd"] = "/secret"
    b = bundle(["sleep", "1000"], edit)
    probe = ["sh", "-c", "pwd; id -u; ls . >/dev/null 2>&1 || echo cannot-list"]
    as_user = bundle(probe, lambda c: (edit(c), c["process"].update(user={"uid": 1000, "gid": 1000})))

    def scenario(rt):
        cid = rt.new_id()
        rt("run", "-d", "--bundle", str(b), cid)
        inside = rt("exec", "--user", "1000:1000", cid, *probe, check=False)
        return (inside.returncode, inside.stdout), run_outcome(rt, as_user)

    assert on_both(pyoci, runc, scenario) == ((0, "/secret\n1000\ncannot-list\n"),) * 2


def test_exec_into_a_created_container(pyoci, runc, bundle):
    """exec while the container is created, its process not yet started (item 9): allowed, as runc allows
    it; the container stays created."""
    b = bundle(["sleep", "1000"])

    def scenario(rt):
        cid = rt.new_id()
        rt("create", "--bundle", str(b), cid)
        inside = rt("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname", check=False)
        return inside.returncode, inside.stdout.split("\n")[1:], rt.state(cid)["status"]

    assert on_both(pyoci, runc, scenario) == (0, [bundle_hostname(b), ""], "created")


def bundle_hostname(b) -> str:
    return json.loads((b / "config.json").read_text())["hostname"]
