"""The CRI harness: a private containerd with its CRI plugin on, as a Kubernetes node runs it, with pyoci and
runc registered as runtime handlers (what a RuntimeClass names), and a CRI client over its gRPC socket.

CriHost is one daemon per pytest-xdist worker (conftest.py): its own config, root, state, sockets, CNI
configuration (a bridge and subnet of its own, host-local addresses kept under base), runtime roots and
network namespaces (netns_mounts_under_state_dir), cgroupfs below its own cgroup root. Pods and their
containers are driven through the CRI API with the generated stubs that PyPI's container-runtime-interface-api
ships (CRI v1, which containerd 1.6 serves); exec and attach streams through the CRI streaming server's
websocket protocol (v4.channel.k8s.io). Cri binds the host to one handler for one test and, after it, removes
the test's pods and checks that nothing of theirs is left.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import shlex
import time
import uuid
from pathlib import Path

import grpc
import websocket
from cri_api.v1 import api_pb2 as api
from cri_api.v1.api_pb2_grpc import ImageServiceStub, RuntimeServiceStub

from conftest import wait_for

from .engines import (RUNTIMES, Containerd, _read, cgroup_file, delete_runtime_state, kill_strays, missing,
                      remove_cgroups, sh, toml_str, unmount_under)

CRI_PLUGIN = "io.containerd.grpc.v1.cri"
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "loopback")
CALL_TIMEOUT = 60  # seconds for one CRI call: StopPodSandbox of a stuck pod takes its whole deadline
MODES = {"pod": api.POD, "container": api.CONTAINER, "node": api.NODE}


def cri_missing() -> str:
    """Why a CRI host cannot run here ("" if it can)."""
    absent = [p for p in CNI_PLUGINS if not os.path.exists(f"{CNI_BIN}/{p}")]
    return (missing("containerd", "ctr", "containerd-shim-runc-v2", "iptables", "ip")
            or (f"CNI plugins not installed in {CNI_BIN}: {', '.join(absent)}" if absent else ""))


def runtime_handler(name: str, binary: str) -> str:
    """The config.toml table that makes binary containerd's CRI runtime handler `name` (what a RuntimeClass's
    `handler` names), through the runc shim: the README shows it for pyoci, the harness writes it for pyoci
    and runc."""
    table = f'plugins."{CRI_PLUGIN}".containerd.runtimes.{name}'
    return (f'[{table}]\n  runtime_type = "io.containerd.runc.v2"\n'
            f'  [{table}.options]\n    BinaryName = {toml_str(binary)}\n')


def runtime_class(handler: str) -> str:
    """The Kubernetes RuntimeClass that sends a pod (runtimeClassName: handler) to CRI handler `handler`."""
    return f"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: {handler}\nhandler: {handler}\n"


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.128.0.0/9 that no address or route of the host overlaps."""
    used = []
    for cmd in (["ip", "-j", "-4", "route", "show", "table", "all"], ["ip", "-j", "-4", "addr"]):
        for entry in json.loads(sh(cmd).stdout or "[]"):
            for dst in [entry.get("dst", "")] + [a.get("local", "") for a in entry.get("addr_info", [])]:
                if dst and dst != "default":
                    used.append(ipaddress.ip_network(dst, strict=False))
    while True:
        net = ipaddress.ip_network(f"10.{random.randrange(128, 256)}.{random.randrange(256)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net


class CriHost(Containerd):
    """A private containerd serving CRI, with runtime handlers pyoci and runc."""

    DISABLED_PLUGINS = tuple(p for p in Containerd.DISABLED_PLUGINS if p != CRI_PLUGIN)

    def __init__(self, base: Path) -> None:
        super().__init__(base, namespace="k8s.io")  # CRI's own containerd namespace
        self.pause_image = "localhost/pyoci-e2e/busybox:pause"
        tag = uuid.uuid4().hex[:8]
        self.network = f"pyoci-e2e-{tag}"
        self.bridge = f"pyoci{tag}"  # at most 15 bytes, an interface name
        self.subnet = free_subnet()
        self.channel: grpc.Channel | None = None
        self.runtime: RuntimeServiceStub | None = None
        self.images: ImageServiceStub | None = None

    @property
    def cri_state(self) -> Path:
        return self.base / "state" / CRI_PLUGIN

    def runtime_root(self, handler: str) -> Path:
        """Where the shim keeps the handler's containers (--root ROOT/k8s.io)."""
        return self.base / f"{handler}-root"

    def config(self) -> str:
        q = toml_str
        handlers = "".join(runtime_handler(name, binary) + f"    Root = {q(self.runtime_root(name))}\n"
                           for name, binary in RUNTIMES.items() if binary)
        return super().config() + f"""\
  [plugins."{CRI_PLUGIN}"]
    sandbox_image = {q(self.pause_image)}
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."{CRI_PLUGIN}".cni]
      bin_dir = {q(CNI_BIN)}
      conf_dir = {q(self.base / "cni")}
    [plugins."{CRI_PLUGIN}".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"
{handlers}"""

    def cni_config(self) -> dict:
        """A bridge network of this daemon's own: its bridge and subnet, addresses kept under base,
        masquerading (so the bridge plugin makes iptables chains, which teardown checks are gone). No
        gateway: the host's forwarding setting stays as it is."""
        return {"cniVersion": "1.0.0", "name": self.network, "plugins": [{
            "type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": str(self.subnet)}]],
                     "dataDir": str(self.base / "ipam")}}]}

    def start(self) -> None:
        (self.base / "cni").mkdir()
        (self.base / "cni" / "10-pyoci-e2e.conflist").write_text(json.dumps(self.cni_config(), indent=2))
        super().start()
        self.channel = grpc.insecure_channel(f"unix://{self.sock}")
        self.runtime = RuntimeServiceStub(self.channel)
        self.images = ImageServiceStub(self.channel)

        def ready() -> bool:
            conditions = self.runtime.Status(api.StatusRequest(), timeout=CALL_TIMEOUT).status.conditions
            return all(c.status for c in conditions) and len(conditions) == 2  # RuntimeReady, NetworkReady
        wait_for(ready, "CRI to report runtime and network ready", timeout=60)

    def import_images(self, archive: Path) -> None:
        """The busybox and pause images (tags e2e and pause of the archive), where CRI finds them."""
        super().import_images(archive)
        for image in (self.image, self.pause_image):
            wait_for(lambda: self.images.ImageStatus(api.ImageStatusRequest(image=api.ImageSpec(image=image)),
                                                     timeout=CALL_TIMEOUT).image.id,
                     f"CRI to see {image}")

    def stop(self) -> list[str]:
        leaks = []
        if self.runtime and self.proc and self.proc.poll() is None:
            for pod in self.runtime.ListPodSandbox(api.ListPodSandboxRequest(), timeout=CALL_TIMEOUT).items:
                leaks.append(f"pod {pod.metadata.name}")
                tear_down_pod(self.runtime, pod.id)
        if self.channel:
            self.channel.close()
        leaks += super().stop()
        leaks += self.remove_network()
        return leaks

    # --- what CNI makes on the host ------------------------------------------------------------------

    def nat_rules(self, marker: str) -> list[str]:
        """The nat table's rules (iptables -S form) whose comment the bridge plugin wrote for this network and
        a pod with marker in its id (every pod: marker '')."""
        comment = f'name: \\"{self.network}\\" id: \\"'
        return [r for r in sh(["iptables", "-w", "-t", "nat", "-S"]).stdout.splitlines()
                if comment in r and f'id: \\"{marker}' in r]

    def remove_nat_rules(self, marker: str = "") -> list[str]:
        """Deletes the masquerading rules and chains of pods whose id starts with marker; returns them."""
        rules = self.nat_rules(marker)
        chains = {r.split()[1] for r in rules if r.startswith("-A ") and r.split()[1] != "POSTROUTING"}
        for rule in rules:
            if rule.startswith("-A POSTROUTING "):
                sh(["iptables", "-w", "-t", "nat", "-D", *shlex.split(rule)[1:]], check=False)
        for chain in chains:
            sh(["iptables", "-w", "-t", "nat", "-F", chain], check=False)
            sh(["iptables", "-w", "-t", "nat", "-X", chain], check=False)
        return rules

    def cni_results(self, marker: str) -> list[Path]:
        """libcni's cached results (/var/lib/cni/results/NETWORK-ID-IF) of pods whose id starts with marker, on
        this network or the loopback one that containerd adds."""
        top = Path("/var/lib/cni/results")
        names = os.listdir(top) if top.is_dir() else []
        return [top / n for n in names
                for net in (self.network, "cni-loopback") if n.startswith(f"{net}-{marker}")
                and (net != "cni-loopback" or marker)]

    def remove_network(self) -> list[str]:
        leaks = [f"iptables {r}" for r in self.remove_nat_rules()]
        if sh(["ip", "link", "show", self.bridge], check=False).returncode == 0:
            sh(["ip", "link", "delete", self.bridge])  # the bridge plugin never deletes its bridge
        for cached in self.cni_results(""):
            leaks.append(f"cni result {cached}")
            cached.unlink()
        return leaks


def tear_down_pod(runtime: RuntimeServiceStub, pod_id: str) -> str:
    """Stops and removes a pod sandbox and its containers; returns what CRI said if it refused."""
    try:
        runtime.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=CALL_TIMEOUT)
        runtime.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=CALL_TIMEOUT)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            return f"{e.code().name}: {e.details()}"
    return ""


class Stream:
    """One exec or attach session of the CRI streaming server (v4.channel.k8s.io over a websocket): every
    binary message starts with its channel, 0 stdin, 1 stdout, 2 stderr, 3 the final status (JSON)."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        self.ws = websocket.create_connection(url.replace("http://", "ws://", 1), timeout=timeout,
                                              subprotocols=["v4.channel.k8s.io"])
        self.out, self.err = bytearray(), bytearray()
        self.status: dict | None = None

    def send(self, data: bytes) -> None:
        self.ws.send_binary(b"\0" + data)

    def receive(self) -> bool:
        """Reads one message; False once the server closed the stream."""
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            return False
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return False
        channel, payload = data[:1], data[1:]
        if channel == b"\1":
            self.out += payload
        elif channel == b"\2":
            self.err += payload
        elif channel == b"\3" and payload:
            self.status = json.loads(payload)
        return True

    def read_until(self, predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or not self.receive():
                raise AssertionError(f"stream ended or timed out waiting for {what}: out={bytes(self.out)!r} "
                                     f"err={bytes(self.err)!r} status={self.status}")

    def finish(self, timeout: float = 30) -> int:
        """Reads to the end; the process's exit status (v4 reports non-zero ones as an ExitCode cause)."""
        deadline = time.monotonic() + timeout
        while self.receive():
            if time.monotonic() > deadline:
                raise AssertionError(f"the stream did not end in {timeout}s: out={bytes(self.out)!r}")
        self.close()
        if not self.status or self.status.get("status") == "Success":
            return 0
        causes = self.status.get("details", {}).get("causes", [])
        return next((int(c["message"]) for c in causes if c.get("reason") == "ExitCode"), -1)

    def close(self) -> None:
        self.ws.close()


class Cri:
    """The CRI API of one host for one test, every pod on RuntimeClass handler `handler`. pod() and
    container() fill in what kubelet would (names, a log directory, a cgroup parent of the pod's own below the
    host's cgroup root, namespace options that containers inherit from their pod); cleanup() removes the pods
    and returns whatever of theirs is left on the host."""

    def __init__(self, host: CriHost, handler: str, logs: Path) -> None:
        self.host, self.handler, self.logs = host, handler, logs
        self.rt: RuntimeServiceStub = host.runtime
        self.pods: dict[str, api.PodSandboxConfig] = {}
        self.uids: list[str] = []
        self.owner: dict[str, str] = {}  # container id: its pod's id

    def pod(self, *, network: str = "pod", pid: str = "container", ipc: str = "pod",
            privileged: bool = False) -> str:
        """Runs a pod sandbox; network/pid/ipc: "pod" (its own), "container" (pid: each container its own),
        "node" (the host's)."""
        uid = uuid.uuid4().hex[:12]
        self.uids.append(uid)
        name = f"e2e-{self.handler}-{uid}"
        (self.logs / name).mkdir(parents=True)
        options = api.NamespaceOption(network=MODES[network], pid=MODES[pid], ipc=MODES[ipc])
        config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="e2e"),
            hostname="" if network == "node" else name,  # the host's own, in its UTS namespace
            log_directory=str(self.logs / name),
            linux=api.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent(uid),
                security_context=api.LinuxSandboxSecurityContext(namespace_options=options, privileged=privileged)))
        pod_id = self.rt.RunPodSandbox(api.RunPodSandboxRequest(config=config, runtime_handler=self.handler),
                                       timeout=CALL_TIMEOUT).pod_sandbox_id
        self.pods[pod_id] = config
        return pod_id

    def stop_pod(self, pod_id: str) -> None:
        self.rt.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=CALL_TIMEOUT)

    def remove_pod(self, pod_id: str) -> None:
        self.rt.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=CALL_TIMEOUT)

    def cgroup_parent(self, uid: str) -> str:
        return f"/{self.host.cgroup_root}/pod{uid}"

    def container(self, pod_id: str, *command: str, name: str = "c", stdin: bool = False, tty: bool = False,
                  privileged: bool = False, mounts: tuple[api.Mount, ...] = (), start: bool = True) -> str:
        """Creates (and starts) a container of the busybox image in the pod, running command; its log is
        LOGDIR/NAME.log."""
        pod = self.pods[pod_id]
        config = api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name), image=api.ImageSpec(image=self.host.image),
            command=list(command), log_path=f"{name}.log", stdin=stdin, tty=tty, mounts=list(mounts),
            linux=api.LinuxContainerConfig(security_context=api.LinuxContainerSecurityContext(
                privileged=privileged, namespace_options=pod.linux.security_context.namespace_options)))
        cid = self.rt.CreateContainer(api.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                 sandbox_config=pod),
                                      timeout=CALL_TIMEOUT).container_id
        self.owner[cid] = pod_id
        if start:
            self.start(cid)
        return cid

    def runtime_state(self, cid: str) -> Path:
        """The state directory of the handler's runtime for a container (the pause container: the pod's id)."""
        return self.host.runtime_root(self.handler) / "k8s.io" / cid

    def log_file(self, pod_id: str, name: str = "c") -> Path:
        return Path(self.pods[pod_id].log_directory) / f"{name}.log"

    def start(self, cid: str) -> None:
        self.rt.StartContainer(api.StartContainerRequest(container_id=cid), timeout=CALL_TIMEOUT)

    def stop(self, cid: str, timeout: int) -> None:
        self.rt.StopContainer(api.StopContainerRequest(container_id=cid, timeout=timeout), timeout=CALL_TIMEOUT)

    def remove(self, cid: str) -> None:
        self.rt.RemoveContainer(api.RemoveContainerRequest(container_id=cid), timeout=CALL_TIMEOUT)

    def status(self, cid: str) -> api.ContainerStatus:
        return self.rt.ContainerStatus(api.ContainerStatusRequest(container_id=cid), timeout=CALL_TIMEOUT).status

    def pod_status(self, pod_id: str) -> api.PodSandboxStatus:
        return self.rt.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod_id),
                                        timeout=CALL_TIMEOUT).status

    def wait_exited(self, cid: str, timeout: float = 30) -> api.ContainerStatus:
        wait_for(lambda: self.status(cid).state == api.CONTAINER_EXITED, f"container {cid[:12]} to exit", timeout)
        return self.status(cid)

    def exec_sync(self, cid: str, *cmd: str, timeout: int = 0) -> api.ExecSyncResponse:
        return self.rt.ExecSync(api.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout),
                                timeout=CALL_TIMEOUT)

    def exec(self, cid: str, *cmd: str, stdin: bool = False) -> Stream:
        url = self.rt.Exec(api.ExecRequest(container_id=cid, cmd=list(cmd), stdin=stdin, stdout=True,
                                           stderr=True), timeout=CALL_TIMEOUT).url
        return Stream(url)

    def attach(self, cid: str, tty: bool = False) -> Stream:
        """Attaches to the container's stdio (a terminal has no stderr of its own)."""
        url = self.rt.Attach(api.AttachRequest(container_id=cid, stdin=True, stdout=True, stderr=not tty, tty=tty),
                             timeout=CALL_TIMEOUT).url
        return Stream(url)

    def pids(self, cid: str) -> list[int]:
        """The host pids in the container's cgroup (cgroupfs: the pod's cgroup parent/ID)."""
        uid = self.pods[self.owner[cid]].metadata.uid
        procs = cgroup_file(f"{self.cgroup_parent(uid)}/{cid}", "pids", "cgroup.procs")
        return [int(p) for p in procs.read_text().split()] if procs else []

    # --- after the test ------------------------------------------------------------------------------

    def cleanup(self) -> list[str]:
        """Removes the test's pods, then finds (and clears) anything of theirs left on the host: shims,
        processes, cgroups, mounts, network namespaces, iptables rules and chains, CNI results, runtime state."""
        leaks = [f"pod {p[:12]}: {err}" for p in self.pods if (err := tear_down_pod(self.rt, p))]
        for pod_id in self.pods:  # a pod's shim is named after it (-id POD_ID) and exits once the pod is gone
            try:
                wait_for(lambda: not any(f"-id {pod_id}" in _read(f"/proc/{pid}/cmdline").replace("\0", " ")
                                         for pid in os.listdir("/proc") if pid.isdigit()),
                         f"the shim of pod {pod_id[:12]} to exit")
            except AssertionError as e:
                leaks.append(str(e))
            leaks += [f"process {p}" for p in kill_strays(f"-id {pod_id}", f"{pod_id}/")]
            leaks += [f"iptables {r}" for r in self.host.remove_nat_rules(pod_id)]
            for cached in self.host.cni_results(pod_id):
                leaks.append(f"cni result {cached}")
                cached.unlink()
        for uid in self.uids:  # every pod asked for, made or not
            parent = self.cgroup_parent(uid)
            leaks += [f"process {p}" for p in kill_strays(f"{parent}/", f"{parent}/")]
            leaks += [f"cgroup {c}" for c in remove_cgroups(parent)]
        netns = self.host.cri_state / "netns"
        leaks += [f"netns {n}" for n in (os.listdir(netns) if netns.is_dir() else [])]
        ids = [*self.pods, *self.owner]
        for line in _read("/proc/self/mountinfo").splitlines():
            if any(i in line for i in ids) or str(netns) in line:
                leaks += [f"mount {m}" for m in unmount_under(Path(line.split()[4]))]
        for handler in RUNTIMES:
            leaks += delete_runtime_state(handler, str(self.host.runtime_root(handler)), "")
        return leaks
