"""linux.seccomp: compiled by libseccomp in the runtime, loaded last before execve; SCMP_ACT_NOTIFY with an
agent on listenerPath."""
from __future__ import annotations

import pytest

from conftest import wait_for

ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def with_seccomp(syscalls, default="SCMP_ACT_ALLOW", nnp=True, user=None, **extra):
    def edit(c):
        c["process"]["noNewPrivileges"] = nnp
        if user:
            c["process"]["user"] = user
        c["linux"]["seccomp"] = {"defaultAction": default, "architectures": ARCHES, "syscalls": syscalls, **extra}
    return edit


@pytest.mark.parametrize("nnp, user", [(True, None), (False, None), (False, {"uid": 1000, "gid": 1000})])
def test_errno_action_and_our_steps_survive_a_blocked_getcwd(pyoci, bundle, nnp, user):
    edit = with_seccomp([{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}], nnp=nnp, user=user)
    b = bundle(["sh", "-c", "mkdir /dev/shm/x 2>&1; grep ^Seccomp: /proc/self/status"], edit)
    out = pyoci("run", "--bundle", str(b), pyoci.new_id()).stdout
    assert "Permission denied" in out and "Seccomp:\t2" in out


def test_kill_action_and_argument_filters(pyoci, bundle):
    edit = with_seccomp([{"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
                         {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}])
    b = bundle(["sh", "-c", "kill -0 $$ 2>&1; kill -CONT $$ && echo cont-ok; hostname x; echo rc=$?"], edit)
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert "Operation not permitted" in proc.stdout and "cont-ok" in proc.stdout  # only signal 0 is filtered
    # SIGSYS (128 + 31) kills hostname, or sh itself where busybox runs the applet in-process
    assert "rc=159" in proc.stdout or proc.returncode == 159, proc


def test_default_errno_with_allow_list(pyoci, bundle):
    allowed = ["read", "write", "openat", "open", "close", "fstat", "newfstatat", "stat", "lstat", "execve", "execveat",
               "brk", "mmap", "munmap", "mprotect", "arch_prctl", "exit_group", "exit", "rt_sigaction",
               "rt_sigprocmask", "set_tid_address", "getuid", "getpid", "prlimit64", "readlink", "ioctl",
               "getrandom", "prctl", "set_robust_list", "rseq", "fcntl", "lseek", "getdents64", "uname",
               "statx", "geteuid", "getppid", "rt_sigreturn", "sigaltstack", "futex", "wait4", "clone", "fork",
               "vfork", "dup2", "dup3", "pipe", "pipe2", "getgid", "getegid", "setpgid", "getpgrp", "access",
               "faccessat", "faccessat2", "fchdir", "chdir", "getcwd", "poll", "pselect6", "select", "kill"]
    edit = with_seccomp([{"names": allowed, "action": "SCMP_ACT_ALLOW"}], default="SCMP_ACT_ERRNO",
                        defaultErrnoRet=38)
    b = bundle(["sh", "-c", "echo hi; hostname x 2>&1"], edit)
    out = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False).stdout
    assert out.startswith("hi\n") and "Function not implemented" in out


def test_a_filter_refusing_execveat_runs(pyoci, runc, bundle):
    """The container's program is started with a plain execve (the executor is itself a sealed copy, so
    /proc/self/exe is never the host's binary): a filter that refuses execveat runs, as with runc."""
    b = bundle(["sh", "-c", "echo started"], with_seccomp([{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}]))
    assert runc("run", "--bundle", str(b), runc.new_id()).stdout == "started\n"
    assert pyoci("run", "--bundle", str(b), pyoci.new_id()).stdout == "started\n"


def test_unknown_syscalls_are_skipped_and_bad_filters_refused(pyoci, bundle):
    b = bundle(["true"], with_seccomp([{"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}]))
    pyoci("run", "--bundle", str(b), pyoci.new_id())
    b = bundle(["true"], with_seccomp([{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]))
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath" in proc.stderr
    bad = [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    proc = pyoci("run", "--bundle", str(bundle(["true"], with_seccomp(bad))), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and "linux.seccomp.syscalls[0] (read): libseccomp refused it" in proc.stderr


def test_exec_gets_the_container_filter(pyoci, bundle):
    b = bundle(["sleep", "1000"], with_seccomp([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    out = pyoci("exec", cid, "sh", "-c", "mkdir /dev/shm/y 2>&1; true").stdout
    assert "Operation not permitted" in out


def test_filter_loaded_early_does_not_break_our_last_steps(pyoci, bundle):
    # Without no_new_privs the filter is loaded before the user switch; Docker-style profiles deny
    # close_range, so the runtime must not need it (nor getcwd) after that point.
    edit = with_seccomp([{"names": ["close_range", "getcwd"], "action": "SCMP_ACT_ERRNO"}], nnp=False,
                        user={"uid": 1000, "gid": 1000})
    out = pyoci("run", "--bundle", str(bundle(["sh", "-c", "echo ran; ls /proc/self/fd"], edit)), pyoci.new_id())
    assert out.stdout.split() == ["ran", "0", "1", "2", "3"]



@pytest.mark.parametrize("also_getcwd", [False, True])
def test_a_profile_without_openat2_still_gets_its_cwd(pyoci, bundle, also_getcwd):
    # Profiles older than openat2 (runtime-tools', many images') refuse it with EPERM; loaded early (no
    # no_new_privs), the filter is in force when the executor changes to process.cwd.
    names = ["openat2"] + (["getcwd"] if also_getcwd else [])
    edit = with_seccomp([{"names": names, "action": "SCMP_ACT_ERRNO"}], nnp=False)

    def cwd(c):
        edit(c)
        c["process"]["cwd"] = "/tmp"

    check = '[ "$(stat -c %i .)" = "$(stat -c %i /tmp)" ] && echo in-tmp'
    out = pyoci("run", "--bundle", str(bundle(["sh", "-c", check], cwd)), pyoci.new_id())
    assert out.stdout == "in-tmp\n"

# A seccomp agent, as a separate process: it takes the container process state and the notify fd from each
# connection to its socket and answers every notification from its table {syscall nr: [val, error]}.
AGENT = r"""
import ctypes, fcntl, json, os, select, socket, struct, sys
path, out, table = sys.argv[1], sys.argv[2], {int(k): v for k, v in json.loads(sys.argv[3]).items()}
RECV, SEND, ID_VALID = 0xC0502100, 0xC0182101, 0x40082102
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(4)
open(out + ".ready", "w").close()
poller = select.poll()
poller.register(server, select.POLLIN)
fds, log = set(), open(out, "a", buffering=1)
while True:
    for fd, ev in poller.poll():
        if fd == server.fileno():
            conn, _ = server.accept()
            msg, got, _, _ = socket.recv_fds(conn, 65536, 4)
            conn.close()
            log.write(json.dumps({"state": json.loads(msg), "nfds": len(got)}) + "\n")
            poller.register(got[0], select.POLLIN)
            fds.add(got[0])
        elif ev & select.POLLIN:
            buf = bytearray(80)
            try:
                fcntl.ioctl(fd, RECV, buf, True)
            except OSError:
                continue  # the process went away between poll and recv
            nid, pid, _, nr = struct.unpack_from("=QIIi", buf)
            val, err = table.get(nr, [0, -38])
            log.write(json.dumps({"nr": nr, "pid": pid}) + "\n")
            try:
                fcntl.ioctl(fd, SEND, bytearray(struct.pack("=QqiI", nid, val, err, 0)), True)
            except OSError:
                pass
        else:  # every process under that filter is gone
            poller.unregister(fd)
            os.close(fd)
            fds.discard(fd)
"""


@pytest.fixture
def agent(tmp_path):
    """Starts the agent on tmp_path/agent.sock; yields (socket path, its log, name → syscall nr)."""
    import ctypes
    import json
    import subprocess
    import sys

    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    nr = lambda name: lib.seccomp_syscall_resolve_name(name.encode())
    sock, log = tmp_path / "agent.sock", tmp_path / "agent.log"
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    exdev, ok = [0, -18], [0, 0]  # mkdir fails with EXDEV, sethostname "succeeds" without doing anything
    table = {nr("mkdir"): exdev, nr("mkdirat"): exdev, nr("sethostname"): ok}
    proc = subprocess.Popen([sys.executable, str(script), str(sock), str(log), json.dumps(table)])
    wait_for(lambda: (tmp_path / "agent.log.ready").exists(), "the notify agent to listen")
    yield sock, log, nr
    proc.kill()
    proc.wait()


def agent_log(log):
    import json

    return [json.loads(line) for line in log.read_text().splitlines()]


NOTIFIED = [{"names": ["mkdir", "mkdirat", "sethostname"], "action": "SCMP_ACT_NOTIFY"}]


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_agent_gets_the_container_process_state(pyoci, bundle, agent, nnp):
    sock, log, nr = agent
    edit = with_seccomp(NOTIFIED, nnp=nnp, listenerPath=str(sock), listenerMetadata="from-the-test")
    script = "mkdir /dev/shm/x 2>&1; hostname faked && echo hostname-ok; hostname; ls /dev/shm"
    b = bundle(["sh", "-c", script], lambda c: (edit(c), c.update(hostname="box")))
    cid = pyoci.new_id()
    pyoci("create", "--bundle", str(b), cid)
    pid = pyoci.state(cid)["pid"]
    first = agent_log(log)[0]
    assert first["nfds"] == 1
    st = first["state"]
    assert st["ociVersion"] and st["fds"] == ["seccompFd"] and st["pid"] == pid and st["metadata"] == "from-the-test"
    assert st["state"]["id"] == cid and st["state"]["pid"] == pid and st["state"]["bundle"] == str(b)
    assert st["state"]["status"] == "creating"
    pyoci("start", cid)
    wait_for(lambda: pyoci.state(cid)["status"] == "stopped", "the container to stop")
    seen = {e["nr"] for e in agent_log(log) if "nr" in e}
    assert seen & {nr("mkdir"), nr("mkdirat")} and nr("sethostname") in seen, seen


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_answers_reach_the_process(pyoci, bundle, agent, nnp):
    sock, log, _ = agent
    edit = with_seccomp(NOTIFIED, nnp=nnp, listenerPath=str(sock))
    script = "mkdir /dev/shm/x 2>&1; hostname faked && echo hostname-ok; hostname; ls /dev/shm; echo end"
    b = bundle(["sh", "-c", script], lambda c: (edit(c), c.update(hostname="box")))
    out = pyoci("run", "--bundle", str(b), pyoci.new_id()).stdout
    assert out == "mkdir: can't create directory '/dev/shm/x': Invalid cross-device link\nhostname-ok\nbox\nend\n"
    assert "metadata" not in agent_log(log)[0]["state"]


def test_notify_on_exec_and_agent_failures(pyoci, bundle, agent, tmp_path):
    sock, log, _ = agent
    b = bundle(["sleep", "1000"], with_seccomp(NOTIFIED, listenerPath=str(sock)))
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(b), cid)
    out = pyoci("exec", cid, "sh", "-c", "mkdir /dev/shm/y 2>&1; true").stdout
    assert "Invalid cross-device link" in out
    states = [e["state"] for e in agent_log(log) if "state" in e]
    assert len(states) == 2 and states[1]["state"]["status"] == "running" and states[1]["pid"] != states[0]["pid"]
    # No agent at listenerPath: create fails with the path named, and leaves nothing behind.
    b = bundle(["true"], with_seccomp(NOTIFIED, listenerPath=str(tmp_path / "nobody.sock")))
    cid = pyoci.new_id()
    proc = pyoci("run", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and proc.stderr == (
        f"pyoci: run {cid}: linux.seccomp.listenerPath ({tmp_path / 'nobody.sock'}): send the notify fd: "
        "No such file or directory\n")
    assert not (pyoci.root / cid).exists()


@pytest.mark.parametrize("seccomp, message", [
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"},
     "linux.seccomp: missing dependency listenerPath for listenerMetadata"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}, {"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY cannot be used for sendmsg"),
])
def test_notify_configs_refused(pyoci, bundle, seccomp, message):
    b = bundle(["true"], lambda c: c["linux"].update(seccomp=seccomp))
    cid = pyoci.new_id()
    proc = pyoci("run", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and f"pyoci: run {cid}: config.json: {message}" in proc.stderr, proc.stderr
