"""linux.seccomp: compiled by libseccomp in the runtime, loaded last before execve."""
from __future__ import annotations

import pytest

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
    allowed = ["read", "write", "openat", "open", "close", "fstat", "newfstatat", "stat", "lstat", "execve",
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


def test_unknown_syscalls_are_skipped_and_bad_filters_refused(pyoci, bundle):
    b = bundle(["true"], with_seccomp([{"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}]))
    pyoci("run", "--bundle", str(b), pyoci.new_id())
    b = bundle(["true"], with_seccomp([{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]))
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported" in proc.stderr
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
