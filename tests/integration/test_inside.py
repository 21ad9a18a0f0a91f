"""What the container's process sees from inside: namespaces, mounts, devices, user, capabilities, fds."""
from __future__ import annotations

import os
import re
import subprocess

from conftest import wait_for

import pytest

from conftest import TEMPLATES


def as_fd3(fd):
    """subprocess arguments that hand fd to the child as its fd 3 (the test process's own fd 3 is pytest's)."""
    return {"pass_fds": (3,), "preexec_fn": lambda: os.dup2(fd, 3)}


def run_in(pyoci, bundle, script, edit=None):
    b = bundle(["sh", "-c", script], edit)
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("template", TEMPLATES)
def test_pid_uts_ipc_net_mount_namespaces_are_new(pyoci, bundle, template):
    out = run_in(pyoci, bundle, "echo $$; hostname; ls /sys/class/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/mnt",
                 lambda c: c.update(hostname="box", domainname="example"))
    lines = out.split()
    assert lines[0] == "1" and lines[1] == "box" and lines[2] == "lo"
    assert os.readlink("/proc/self/ns/ipc") != lines[3] and os.readlink("/proc/self/ns/mnt") != lines[4]


def test_domainname(pyoci, bundle):
    assert run_in(pyoci, bundle, "cat /proc/sys/kernel/domainname",
                  lambda c: c.update(domainname="example.org")) == "example.org\n"


def test_join_existing_namespace_by_path(pyoci, bundle):
    first = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sleep", "1000"])), first)
    path = f"/proc/{pyoci.state(first)['pid']}/ns/net"
    out = run_in(pyoci, bundle, "readlink /proc/self/ns/net",
                 lambda c: c["linux"]["namespaces"].__setitem__(1, {"type": "network", "path": path}))
    assert out.strip() == os.readlink(path)


def test_duplicate_namespace_is_refused(pyoci, bundle):
    b = bundle(["true"], lambda c: c["linux"]["namespaces"].append({"type": "pid"}))
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith('config.json: linux.namespaces[6].type: duplicate namespace "pid"')


def test_user_namespace_maps_ids(pyoci, bundle, open_rootfs):
    def edit(c):
        c["root"]["path"] = open_rootfs
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["mounts"] = [m for m in c["mounts"] if m["type"] not in ("sysfs", "cgroup")]
        c["linux"]["resources"] = {}
    out = run_in(pyoci, bundle, "cat /proc/self/uid_map /proc/self/gid_map; id -u", edit)
    assert out.split() == ["0", "100000", "65536", "0", "100000", "65536", "0"]


def test_time_namespace_offsets(pyoci, bundle):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365}, "monotonic": {"secs": 0}}
    uptime = float(run_in(pyoci, bundle, "cut -d' ' -f1 /proc/uptime", edit))
    assert uptime > 86400 * 365


@pytest.mark.parametrize("template", TEMPLATES)
def test_mounts_tmpfs_bind_readonly_and_options(pyoci, bundle, tmp_path, template):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "f").write_text("from host\n")

    def edit(c):
        c["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(host_dir), "options": ["rbind", "ro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m", "mode=700"]},
            {"destination": "/etc/hostfile", "type": "none", "source": str(host_dir / "f"), "options": ["bind"]},
        ]
    out = run_in(pyoci, bundle, "cat /data/f /etc/hostfile; touch /data/x 2>&1 || echo ro-ok; "
                 "grep -E ' /(scratch|data) ' /proc/self/mountinfo; stat -c %a /scratch", edit)
    assert out.count("from host") == 2 and "ro-ok" in out
    assert re.search(r" /scratch \S*nosuid.* - tmpfs tmpfs .*size=1024k", out)
    assert re.search(r" /data ro,", out)
    assert out.strip().endswith("700")


@pytest.mark.parametrize("template", TEMPLATES)
def test_root_readonly_masked_and_readonly_paths(pyoci, bundle, template):
    """The default config's root.readonly, linux.maskedPaths (/proc/timer_list, /sys/firmware) and
    linux.readonlyPaths (/proc/sys)."""
    out = run_in(pyoci, bundle, "touch /x 2>/dev/null || echo root-ro; stat -c %t,%T /proc/timer_list; ls /sys/firmware | wc -l;"
                 " echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-ro")
    assert out.split() == ["root-ro", "1,3", "0", "sys-ro"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_devices_default_and_configured(pyoci, bundle, template):
    def edit(c):
        c["linux"]["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o640,
                                  "uid": 7, "gid": 8}]
    out = run_in(pyoci, bundle, "for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done;"
                 " readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; echo x > /dev/null && echo null-ok", edit)
    assert "/dev/null character special file 1:3 666 0:0" in out
    assert "/dev/urandom character special file 1:9 666" in out
    assert "/dev/fuse character special file a:e5 640 7:8" in out
    assert "pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\nnull-ok" in out


@pytest.mark.parametrize("template", TEMPLATES)
def test_user_groups_umask_cwd_env(pyoci, bundle, template):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 0o077}
        c["process"]["cwd"] = "/tmp"
        c["process"]["env"].append("HELLO=world")
    out = run_in(pyoci, bundle, "id -u; id -g; id -G; umask; pwd; echo $HELLO $HOME", edit)
    assert out.split() == ["1000", "1001", "1001", "5", "7", "0077", "/tmp", "world", "/"]


def test_capabilities_all_sets(pyoci, bundle):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
        c["process"]["capabilities"] = {"bounding": caps + ["CAP_CHOWN"], "effective": caps, "permitted": caps,
                                        "inheritable": caps, "ambient": caps}
    out = run_in(pyoci, bundle, "grep ^Cap /proc/self/status", edit)
    fields = dict(line.split(":\t") for line in out.splitlines())
    assert fields == {"CapInh": "0000000000000420", "CapPrm": "0000000000000420", "CapEff": "0000000000000420",
                      "CapBnd": "0000000000000421", "CapAmb": "0000000000000420"}


def test_unknown_capability_is_refused(pyoci, bundle):
    b = bundle(["true"], lambda c: c["process"]["capabilities"]["bounding"].append("CAP_LOL"))
    proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and 'process.capabilities.bounding[3]: unknown capability "CAP_LOL"' in proc.stderr


@pytest.mark.parametrize("template", TEMPLATES)
def test_rlimits_no_new_privileges_oom_score(pyoci, bundle, template):
    def edit(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4000, "soft": 3000},
                                   {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]
        c["process"]["noNewPrivileges"] = True
        c["process"]["oomScoreAdj"] = 500
    out = run_in(pyoci, bundle, "ulimit -n; ulimit -Hn; ulimit -c; grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj", edit)
    assert out.split() == ["3000", "4000", "0", "NoNewPrivs:", "1", "500"]


def test_only_stdio_fds_reach_the_container(pyoci, bundle):
    out = run_in(pyoci, bundle, "ls /proc/self/fd")
    assert sorted(int(x) for x in out.split()) == [0, 1, 2, 3]  # 3 is ls's own directory fd


def test_preserve_fds_passes_extra_fds(pyoci, bundle, tmp_path):
    f = tmp_path / "extra"
    f.write_text("extra fd\n")
    b = bundle(["sh", "-c", "cat <&3; ls /proc/self/fd"])
    fd = os.open(f, os.O_RDONLY)
    try:
        proc = pyoci("run", "--preserve-fds", "1", "--bundle", str(b), pyoci.new_id(), **as_fd3(fd))
    finally:
        os.close(fd)
    assert proc.stdout.startswith("extra fd\n")
    assert sorted(int(x) for x in proc.stdout.split()[2:]) == [0, 1, 2, 3, 4]


def test_sysctl_in_network_namespace(pyoci, bundle):
    out = run_in(pyoci, bundle, "cat /proc/sys/net/ipv4/ip_forward",
                 lambda c: c["linux"].update(sysctl={"net.ipv4.ip_forward": "1"}))
    assert out == "1\n"


def test_rootfs_propagation_and_no_pivot(pyoci, bundle):
    out = run_in(pyoci, bundle, "cat /proc/self/mountinfo",
                 lambda c: c["linux"].update(rootfsPropagation="shared"))
    assert re.search(r"^\d+ \d+ \S+ \S+ / \S+ shared:", out, re.M)
    b = bundle(["sh", "-c", "echo in; cat /proc/self/mountinfo | wc -l"])
    proc = pyoci("run", "--no-pivot", "--bundle", str(b), pyoci.new_id())
    assert proc.stdout.startswith("in\n")


def test_missing_executable_fails_create(pyoci, bundle):
    b = bundle(["/no/such/binary"])
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1 and "no such file or directory" in proc.stderr.lower()
    b = bundle(["nosuchcmd"])
    proc = pyoci("create", "--bundle", str(b), cid, check=False)
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in proc.stderr
    assert not (pyoci.root / cid).exists()


def test_session_keyring_is_new_unless_refused(pyoci, bundle):
    for flags, expected in (([], "1"), (["--no-new-keyring"], "0")):
        cid = pyoci.new_id()
        b = bundle(["sh", "-c", f"grep -c ' _ses.{cid}:' /proc/keys || true"],
                   lambda c: c["linux"].update(maskedPaths=[]))
        assert pyoci("run", *flags, "--bundle", str(b), cid).stdout.strip() == expected


def test_recursive_readonly_and_overlay_mounts(pyoci, bundle, tmp_path):
    lower, upper, work = tmp_path / "lower", tmp_path / "upper", tmp_path / "work"
    for d in (lower, upper, work):
        d.mkdir()
    (lower / "file").write_text("lower\n")

    def edit(c):
        c["mounts"] += [
            {"destination": "/ov", "type": "overlay", "source": "overlay",
             "options": [f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"]},
            {"destination": "/rro", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "rro"]},
        ]
    b = bundle(["sh", "-c", "cat /ov/file; echo new > /ov/file; touch /rro/pids/x 2>/dev/null || echo sub-ro"], edit)
    out = pyoci("run", "--bundle", str(b), pyoci.new_id()).stdout
    assert out.split() == ["lower", "sub-ro"]
    assert (upper / "file").read_text() == "new\n" and (lower / "file").read_text() == "lower\n"


def test_personality_linux32(pyoci, bundle):
    b = bundle(["uname", "-m"], lambda c: c["linux"].update(personality={"domain": "LINUX32"}))
    assert pyoci("run", "--bundle", str(b), pyoci.new_id()).stdout.strip() == "i686"


def test_listen_fds_are_handed_on(pyoci, bundle, tmp_path):
    f = tmp_path / "sock"
    f.write_text("activated\n")
    fd = os.open(f, os.O_RDONLY)
    try:
        b = bundle(["sh", "-c", "echo $LISTEN_FDS; cat <&3"])
        proc = pyoci("run", "--bundle", str(b), pyoci.new_id(), **as_fd3(fd),
                     env={**os.environ, "LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())})
    finally:
        os.close(fd)
    assert proc.stdout.split("\n")[:2] == ["1", "activated"]


def test_without_mount_namespace_the_host_gets_its_mounts_back(pyoci, bundle, open_rootfs):
    def edit(c):
        c["root"]["path"] = open_rootfs  # a rootfs of this test's own, so other tests' mounts do not count
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "mount"]

    def ours():
        return [line for line in open("/proc/self/mountinfo") if open_rootfs in line]
    b = bundle(["sh", "-c", "ls /bin/busybox && cat /proc/self/mountinfo | wc -l"], edit)
    cid = pyoci.new_id()
    out = pyoci("run", "--bundle", str(b), cid).stdout
    assert out.startswith("/bin/busybox\n")
    assert ours() == []
    pyoci("create", "--bundle", str(b), cid)
    assert ours() != []  # its mounts are on the host while it lives
    pyoci("delete", "--force", cid)
    assert ours() == []


def test_joining_a_mount_namespace_by_path_still_sets_up_the_root(pyoci, bundle):
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "1000"])
    try:
        path = f"/proc/{holder.pid}/ns/mnt"
        wait_for(lambda: os.readlink(path) != os.readlink("/proc/self/ns/mnt"), "unshare's new mount namespace")

        def edit(c):
            c["linux"]["namespaces"] = [ns if ns["type"] != "mount" else {"type": "mount", "path": path}
                                        for ns in c["linux"]["namespaces"]]
        out = run_in(pyoci, bundle, "readlink /proc/self/ns/mnt; ls /bin/busybox", edit)
        assert out.split() == [os.readlink(path), "/bin/busybox"]
    finally:
        holder.kill()
        holder.wait()
