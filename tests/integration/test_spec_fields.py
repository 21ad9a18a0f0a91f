"""Fields of runtime-spec 1.3 that no other test watched take effect: seccomp's argument masks (valueTwo),
architectures and flags, the nanoseconds of a time offset."""
from __future__ import annotations

import platform
import shutil
import subprocess

import pytest

from conftest import wait_for


def run(pyoci, bundle, script: str, edit) -> str:
    proc = pyoci("run", "--bundle", str(bundle(["sh", "-c", script], edit)), pyoci.new_id(), check=False)
    return proc.stdout + proc.stderr


def seccomp(**fields):
    def edit(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", **fields}
    return edit


def test_seccomp_masked_eq_takes_value_two(pyoci, bundle):
    """(mode & 077) == 0 is refused: chmod 700 fails, chmod 755 does not."""
    def masked(index):
        return [{"index": index, "op": "SCMP_CMP_MASKED_EQ", "value": 0o077, "valueTwo": 0}]
    edit = seccomp(syscalls=[{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": masked(1)},
                             {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                              "args": masked(2)}])
    out = run(pyoci, bundle, "touch /dev/shm/f; chmod 700 /dev/shm/f 2>&1; chmod 755 /dev/shm/f && echo 755-ok", edit)
    assert "Operation not permitted" in out and "755-ok" in out


I386_GETPID = r"""
#include <stdio.h>
int main(void) {
    long r;
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");  /* getpid, by the i386 table */
    printf("i386 getpid %ld\n", r);
    return 0;
}
"""


@pytest.fixture
def i386_caller(tmp_path) -> str:
    """A static x86-64 program that makes one i386 system call (int 0x80)."""
    if platform.machine() != "x86_64" or not shutil.which("cc"):
        pytest.skip("needs x86-64 and a C compiler")
    (tmp_path / "i386.c").write_text(I386_GETPID)
    if subprocess.run(["cc", "-static", "-O2", "-o", str(tmp_path / "i386"), str(tmp_path / "i386.c")],
                      capture_output=True).returncode:
        pytest.skip("no static C library to build the i386 caller")
    if subprocess.run([str(tmp_path / "i386")], capture_output=True).returncode:
        pytest.skip("this kernel has no i386 emulation")
    return str(tmp_path / "i386")


@pytest.mark.parametrize("arches, allowed", [(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], True),
                                             (["SCMP_ARCH_X86_64"], False)])
def test_seccomp_architectures_decide_what_a_foreign_call_meets(pyoci, bundle, i386_caller, arches, allowed):
    """A call of an architecture the filter lists goes through its rules (none here: allowed); one of an
    architecture it does not list is killed, as libseccomp builds the filter."""
    def edit(c):
        seccomp(architectures=arches, syscalls=[{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}])(c)
        c["mounts"].append({"destination": "/i386", "type": "bind", "source": i386_caller, "options": ["bind", "ro"]})
    out = run(pyoci, bundle, "/i386; echo rc=$?", edit)
    assert ("i386 getpid" in out) is allowed and ("rc=0" in out) is allowed, out
    assert allowed or "rc=159" in out  # SIGSYS


def test_seccomp_flags_reach_the_kernel(pyoci, bundle):
    """SECCOMP_FILTER_FLAG_LOG: the kernel logs the errno action taken (an audit line naming the process),
    which it does not without the flag."""
    pids = []
    for flags in (["SECCOMP_FILTER_FLAG_LOG"], []):
        edit = seccomp(flags=flags, syscalls=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
        cid = pyoci.new_id()
        pyoci("create", "--bundle", str(bundle(["mkdir", "/dev/shm/x"], edit)), cid)
        pids.append(pyoci.state(cid)["pid"])
        pyoci("start", cid)
        wait_for(lambda: pyoci.state(cid)["status"] == "stopped", "the container's mkdir to end")
    log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    assert f' pid={pids[0]} comm="mkdir"' in log and f' pid={pids[1]} comm="mkdir"' not in log


def test_time_offsets_seconds_and_nanoseconds(pyoci, bundle):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"monotonic": {"secs": 7, "nanosecs": 123456789},
                                     "boottime": {"secs": 86400, "nanosecs": 5}}
    out = run(pyoci, bundle, "cat /proc/self/timens_offsets", edit)
    assert [line.split() for line in out.splitlines()] == [["monotonic", "7", "123456789"], ["boottime", "86400", "5"]]
