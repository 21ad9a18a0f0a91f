"""Kubernetes' way in: containerd 1.6's CRI plugin and runc shim run pods on pyoci as RuntimeClass handler
`pyoci`; the same tests run on handler `runc`, the reference.

Every test gets the `cri` fixture (conftest.py, cri.py): the CRI API of this worker's containerd with one
handler; after the test its pods are removed and anything of theirs left on the host (shims, processes,
cgroups, mounts, network namespaces, iptables chains, CNI results, runtime state) fails it.
"""
from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from cri_api.v1 import api_pb2 as api

from conftest import wait_for

from .cri import runtime_class, runtime_handler
from .engines import cgroup_file, missing, unmount_under

SKIP = missing("containerd", "ctr", "containerd-shim-runc-v2", "umoci", "tar", "iptables", "ip")
pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.skipif(bool(SKIP), reason=SKIP)]
README = Path(__file__).resolve().parents[2] / "README.md"
FOREVER = ("sleep", "1000000")
TRAP_TERM = ("sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done")


def log_lines(path: Path) -> list[tuple[str, str]]:
    """(stream, text) of each line of a CRI container log: `TIMESTAMP STREAM F|P TEXT`."""
    lines = []
    for line in path.read_text().splitlines():
        _, stream, _, text = line.split(" ", 3)
        lines.append((stream, text))
    return lines


def wait_logged(path: Path, entry: tuple[str, str], timeout: float = 30) -> None:
    wait_for(lambda: path.exists() and entry in log_lines(path), f"{entry} in {path.name}", timeout)


def test_readme_shows_what_the_harness_registers():
    """The README's containerd table and RuntimeClass are the ones these tests run with (the harness writes
    runtime_handler() with the binary under test, and the tests name the handler as the RuntimeClass does)."""
    text = README.read_text()
    assert textwrap.indent(runtime_handler("pyoci", "/usr/local/bin/pyoci"), "    ") in text
    assert textwrap.indent(runtime_class("pyoci"), "    ") in text


def test_pod_sandbox(cri):
    pod = cri.pod()
    status = cri.pod_status(pod)
    assert status.state == api.SANDBOX_READY
    assert ipaddress.ip_address(status.network.ip) in cri.host.subnet
    assert (cri.runtime_state(pod) / "state.json").exists()  # the handler's runtime made the pause container
    assert cri.host.nat_rules(pod)  # the bridge plugin's masquerading: teardown checks these are gone
    cri.stop_pod(pod)
    assert cri.pod_status(pod).state == api.SANDBOX_NOTREADY
    assert not cri.host.nat_rules(pod)
    cri.remove_pod(pod)
    assert not cri.rt.ListPodSandbox(api.ListPodSandboxRequest(filter=api.PodSandboxFilter(id=pod)), timeout=60).items


def test_container_lifecycle_and_graceful_stop(cri):
    pod = cri.pod()
    cid = cri.container(pod, *TRAP_TERM, start=False)
    assert cri.status(cid).state == api.CONTAINER_CREATED
    cri.start(cid)
    assert cri.status(cid).state == api.CONTAINER_RUNNING
    wait_logged(cri.log_file(pod), ("stdout", "ready"))
    begin = time.monotonic()
    cri.stop(cid, timeout=30)  # TERM, and KILL only after 30 s
    assert time.monotonic() - begin < 20
    status = cri.status(cid)
    assert status.state == api.CONTAINER_EXITED and status.exit_code == 0
    assert ("stdout", "got TERM") in log_lines(cri.log_file(pod))
    cri.remove(cid)
    listed = cri.rt.ListContainers(api.ListContainersRequest(filter=api.ContainerFilter(id=cid)), timeout=60)
    assert not listed.containers


def test_forced_stop(cri):
    """Timeout 0: KILL at once. The container's PID 1 ignores TERM anyway (no handler)."""
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    cri.stop(cid, timeout=0)
    status = cri.status(cid)
    assert status.state == api.CONTAINER_EXITED and status.exit_code == 137
    cri.remove(cid)


def test_stop_waits_then_kills(cri):
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    begin = time.monotonic()
    cri.stop(cid, timeout=2)
    assert 2 <= time.monotonic() - begin < 30
    assert cri.status(cid).exit_code == 137


def test_container_exiting_by_itself(cri):
    pod = cri.pod()
    cid = cri.container(pod, "sh", "-c", "echo bye; echo oops >&2; exit 3")
    status = cri.wait_exited(cid)
    # (no order between started_at and finished_at: CRI takes the start time when the runtime's start has
    # returned, by when a short process may have ended)
    assert status.exit_code == 3 and status.finished_at > 0 and status.started_at >= status.created_at > 0
    assert log_lines(cri.log_file(pod)) in ([("stdout", "bye"), ("stderr", "oops")],
                                            [("stderr", "oops"), ("stdout", "bye")])
    cri.remove(cid)
    cri.stop_pod(pod)


def test_exec_sync(cri):
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    r = cri.exec_sync(cid, "sh", "-c", "echo out; echo err >&2; cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\nsleep 1000000 ", b"err\n", 5)


def test_exec_sync_timeout(cri):
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    begin = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        cri.exec_sync(cid, "sh", "-c", "touch /tmp/started; exec sleep 1000", timeout=1)
    assert "timeout" in e.value.details() and time.monotonic() - begin < 20
    assert cri.exec_sync(cid, "test", "-e", "/tmp/started").exit_code == 0
    wait_for(lambda: len(cri.pids(cid)) == 1, "the timed-out exec to be killed")
    assert cri.status(cid).state == api.CONTAINER_RUNNING


def test_exec_with_stdin(cri):
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    stream = cri.exec(cid, "sh", "-c", "read line; echo got:$line; echo err:$line >&2; exit 4", stdin=True)
    stream.send(b"hello\n")
    assert stream.finish() == 4
    assert (bytes(stream.out), bytes(stream.err)) == (b"got:hello\n", b"err:hello\n")


def test_attach_and_logs(cri):
    pod = cri.pod()
    cid = cri.container(pod, "sh", "-c", "echo started; while read line; do echo got:$line; "
                                         "echo err:$line >&2; done; echo eof", stdin=True)
    wait_logged(cri.log_file(pod), ("stdout", "started"))
    stream = cri.attach(cid)
    stream.send(b"one\n")
    stream.read_until(lambda: b"got:one\n" in stream.out and b"err:one\n" in stream.err, "the echoes")
    stream.close()
    wait_logged(cri.log_file(pod), ("stderr", "err:one"))
    assert [e for e in log_lines(cri.log_file(pod)) if e[0] == "stdout"] == [("stdout", "started"),
                                                                            ("stdout", "got:one")]
    cri.rt.ReopenContainerLog(api.ReopenContainerLogRequest(container_id=cid), timeout=60)  # log rotation


def test_terminal(cri):
    """A container with tty: the runtime hands the pty to the shim over --console-socket; attach types on it."""
    pod = cri.pod()
    cid = cri.container(pod, "sh", "-c", "tty; echo ready; read line; echo got:$line", stdin=True, tty=True)
    wait_logged(cri.log_file(pod), ("stdout", "ready"))
    stream = cri.attach(cid, tty=True)
    stream.send(b"typed\n")
    assert cri.wait_exited(cid).exit_code == 0
    stream.close()
    lines = log_lines(cri.log_file(pod))
    assert lines[0] == ("stdout", "/dev/pts/0") and ("stdout", "got:typed") in lines, lines


def test_stats(cri):
    pod = cri.pod()
    cid = cri.container(pod, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
                                         "dd if=/dev/zero of=/tmp/f bs=1M count=4 2>/dev/null; sleep 1000000")
    wait_for(lambda: cri.exec_sync(cid, "test", "-s", "/tmp/f").exit_code == 0, "the work to be done")
    stats = cri.rt.ContainerStats(api.ContainerStatsRequest(container_id=cid), timeout=60).stats
    assert stats.attributes.id == cid
    assert stats.cpu.usage_core_nano_seconds.value > 0
    assert stats.memory.working_set_bytes.value > 0
    listed = cri.rt.ListContainerStats(api.ListContainerStatsRequest(
        filter=api.ContainerStatsFilter(pod_sandbox_id=pod)), timeout=60).stats
    assert [s.attributes.id for s in listed] == [cid]


def test_update_resources(cri):
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    resources = api.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_shares=512, cpu_period=100000,
                                            cpu_quota=50000)
    cri.rt.UpdateContainerResources(api.UpdateContainerResourcesRequest(container_id=cid, linux=resources),
                                    timeout=60)
    rel = f"{cri.cgroup_parent(cri.pods[pod].metadata.uid)}/{cid}"
    for controller, name, value in (("memory", "memory.limit_in_bytes", 64 << 20), ("cpu", "cpu.shares", 512),
                                    ("cpu", "cpu.cfs_quota_us", 50000)):
        path = cgroup_file(rel, controller, name)
        if path:  # cgroup v1 (v2 has memory.max, cpu.weight, cpu.max)
            assert int(path.read_text()) == value, name
    assert cri.status(cid).state == api.CONTAINER_RUNNING
    assert cri.exec_sync(cid, "true").exit_code == 0


def test_shared_pid_namespace_pod_stops_cleanly(cri):
    pod = cri.pod(pid="pod")
    first = cri.container(pod, "sleep", "1000001", name="first")
    second = cri.container(pod, "sleep", "1000002", name="second")
    wait_for(lambda: b"1000001" in cri.exec_sync(second, "ps").stdout, "the first container's process to show")
    ps = cri.exec_sync(second, "ps", "-o", "pid,args").stdout.decode()
    assert re.search(r"^\s*1 sh -c trap", ps, re.M), ps  # the pause process is PID 1 of the pod
    assert "sleep 1000001" in ps and "sleep 1000002" in ps
    everything = cri.pids(first) + cri.pids(second)
    begin = time.monotonic()
    cri.stop_pod(pod)
    assert time.monotonic() - begin < 20
    for cid in (first, second):
        assert cri.status(cid).state == api.CONTAINER_EXITED
    assert not [p for p in everything if os.path.exists(f"/proc/{p}")]
    cri.remove_pod(pod)


def test_what_an_exited_container_left_in_a_shared_pid_namespace_is_killed(cri):
    """Its processes outlive its init there (the pod's PID 1 adopts them): the shim, seeing the init exit, kills
    them with `kill --all ID 9` on the stopped container."""
    pod = cri.pod(pid="pod")
    keeper = cri.container(pod, *FOREVER, name="keeper")
    cid = cri.container(pod, "sh", "-c", "sleep 1000003 & echo started", name="leaver")
    assert cri.wait_exited(cid).exit_code == 0
    wait_for(lambda: b"sleep 1000003" not in cri.exec_sync(keeper, "ps", "-o", "args").stdout,
             "what the exited container left running to be killed")
    cri.remove(cid)


def test_own_namespaces(cri):
    pod = cri.pod()
    cid = cri.container(pod, *FOREVER)
    for ns in ("net", "pid", "ipc", "uts", "mnt"):
        inside = cri.exec_sync(cid, "readlink", f"/proc/self/ns/{ns}").stdout.decode().strip()
        assert inside != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert cri.exec_sync(cid, "cat", "/proc/1/cmdline").stdout == b"sleep\x001000000\x00"


def test_host_namespaces(cri):
    pod = cri.pod(network="node", pid="node", ipc="node")
    cid = cri.container(pod, *FOREVER)
    for ns in ("net", "pid", "ipc"):
        inside = cri.exec_sync(cid, "readlink", f"/proc/self/ns/{ns}").stdout.decode().strip()
        assert inside == os.readlink(f"/proc/self/ns/{ns}"), ns
    assert cri.exec_sync(cid, "test", "-e", f"/proc/{os.getpid()}").exit_code == 0  # sees the host's processes
    assert cri.exec_sync(cid, "readlink", "/proc/self/ns/mnt").stdout.decode().strip() != os.readlink(
        "/proc/self/ns/mnt")


def test_privileged_container(cri):
    pod = cri.pod(privileged=True)
    cid = cri.container(pod, *FOREVER, privileged=True)
    status = cri.exec_sync(cid, "cat", "/proc/self/status").stdout.decode()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    with open("/proc/self/status") as f:
        bounding = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    assert fields["CapEff"].strip() == bounding  # every capability the host has
    assert fields["Seccomp"].strip() == "0"
    r = cri.exec_sync(cid, "sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs t /mnt/t && umount /mnt/t && ls /dev")
    assert r.exit_code == 0, r.stderr
    plain = cri.container(pod, *FOREVER, name="plain")
    assert cri.exec_sync(plain, "sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs t /mnt/t").exit_code != 0
    host_devices = {"kmsg", "loop0", "tty0"} & set(os.listdir("/dev"))  # never in a container's default /dev
    assert host_devices <= set(r.stdout.decode().split())
    assert not host_devices & set(cri.exec_sync(plain, "ls", "/dev").stdout.decode().split())


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory that is a shared mount point (what Bidirectional and HostToContainer mounts need);
    unmounted with everything below it after the test."""
    d = tmp_path / "shared"
    d.mkdir()
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(d)], check=True)
        yield d
    finally:
        unmount_under(d)


def host_mounted(d: Path) -> bool:
    return any(line.split()[4] == str(d) for line in open("/proc/self/mountinfo"))


@pytest.mark.parametrize("propagation", ["PROPAGATION_BIDIRECTIONAL", "PROPAGATION_HOST_TO_CONTAINER",
                                         "PROPAGATION_PRIVATE"])
def test_mount_propagation(cri, shared_dir, propagation):
    pod = cri.pod(privileged=True)
    mount = api.Mount(container_path="/mnt/shared", host_path=str(shared_dir),
                      propagation=api.MountPropagation.Value(propagation))
    cid = cri.container(pod, *FOREVER, privileged=True, mounts=(mount,))
    for d in ("from-host", "from-ctr"):
        (shared_dir / d).mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "from-host", str(shared_dir / "from-host")], check=True)
    (shared_dir / "from-host" / "hi").write_text("host")
    seen_inside = cri.exec_sync(cid, "cat", "/mnt/shared/from-host/hi").stdout == b"host"
    r = cri.exec_sync(cid, "sh", "-c", "mount -t tmpfs from-ctr /mnt/shared/from-ctr && "
                                       "echo ctr > /mnt/shared/from-ctr/hi")
    assert r.exit_code == 0, r.stderr
    seen_outside = host_mounted(shared_dir / "from-ctr")
    assert (seen_inside, seen_outside) == {"PROPAGATION_BIDIRECTIONAL": (True, True),
                                           "PROPAGATION_HOST_TO_CONTAINER": (True, False),
                                           "PROPAGATION_PRIVATE": (False, False)}[propagation]
    if seen_outside:
        assert (shared_dir / "from-ctr" / "hi").read_text() == "ctr\n"
