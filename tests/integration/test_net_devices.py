"""linux.netDevices with veth (and dummy, where the kernel has it) interfaces this test makes: moved into the
container's network namespace and renamed, their permanent global addresses and their state kept, refused
in one line with nothing moved, given back when a create fails after the move, and left to the kernel when
the namespace ends (a virtual interface is destroyed with it; in a namespace the container only joined, it
stays with that namespace's owner)."""
from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from conftest import wait_for


def ip(*args: str, netns_pid: int | None = None, check: bool = True) -> str:
    prefix = ["nsenter", "-t", str(netns_pid), "-n"] if netns_pid else []
    proc = subprocess.run([*prefix, "ip", *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout


def exists(name: str, netns_pid: int | None = None) -> bool:
    return subprocess.run([*(["nsenter", "-t", str(netns_pid), "-n"] if netns_pid else []), "ip", "link", "show",
                           name], capture_output=True).returncode == 0


@pytest.fixture
def veth():
    """veth(addresses=()): a fresh veth pair (name, peer) on the host, up, with these addresses on name;
    both gone after the test whatever happened."""
    made = []

    def make(*addresses: str) -> tuple[str, str]:
        name = f"pv{uuid.uuid4().hex[:8]}"
        ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
        made.append(name)
        for a in addresses:
            ip("addr", "add", *a.split(), "dev", name)
        ip("link", "set", name, "up")
        return name, name + "p"
    yield make
    for name in made:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", name + "p"], capture_output=True)


def devices(c: dict, devs: dict) -> None:
    c["linux"]["netDevices"] = devs


def running(pyoci, bundle, edit) -> tuple[str, int]:
    cid = pyoci.new_id()
    pyoci("run", "-d", "--bundle", str(bundle(["sleep", "1000"], edit)), cid)
    return cid, pyoci.state(cid)["pid"]


def refused(pyoci, bundle, edit, message: str) -> None:
    proc = pyoci("run", "--bundle", str(bundle(["true"], edit)), pyoci.new_id(), check=False)
    assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_veth_moved_in_renamed_with_its_global_permanent_addresses_and_up(pyoci, bundle, veth):
    name, peer = veth("10.123.0.1/24", "2001:db8:18::1/64", "10.124.0.1/24 valid_lft 300 preferred_lft 300",
                      "10.125.0.1/24 scope link")
    cid, pid = running(pyoci, bundle, lambda c: devices(c, {name: {"name": "ctr0"}}))
    assert not exists(name) and exists(peer)
    inside = ip("-o", "addr", "show", "ctr0", netns_pid=pid)
    assert " 10.123.0.1/24 " in inside and " 2001:db8:18::1/64 " in inside
    assert "10.124.0.1" not in inside and "10.125.0.1" not in inside  # a lease, a link-scope address: left out
    assert "UP" in ip("-o", "link", "show", "ctr0", netns_pid=pid).split("<")[1].split(">")[0].split(",")
    pyoci("delete", "--force", cid)
    # the namespace has ended: the kernel destroys a virtual interface (and so its peer), as the spec says, in
    # the work item that tears the namespace down once its last user is gone (not always before delete returns)
    wait_for(lambda: not exists(name) and not exists(peer), "the container's veth and its peer to go", 10)


def test_dummy_moved_in_under_its_own_name(pyoci, bundle):
    name = f"pd{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "link", "add", name, "type", "dummy"], capture_output=True).returncode != 0:
        pytest.skip("this kernel has no dummy interfaces")
    try:
        _, pid = running(pyoci, bundle, lambda c: devices(c, {name: {}}))
        assert not exists(name) and exists(name, pid)
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_a_name_template_takes_the_first_free_number(pyoci, bundle, veth):
    name, _ = veth()
    _, pid = running(pyoci, bundle, lambda c: devices(c, {name: {"name": "eth%d"}}))
    assert exists("eth0", pid)


def test_in_a_joined_namespace_the_interface_stays_with_its_owner(pyoci, bundle, veth):
    name, peer = veth("10.126.0.1/24")
    owner, owner_pid = running(pyoci, bundle, lambda c: None)
    path = f"/proc/{owner_pid}/ns/net"

    def join(c):
        c["linux"]["namespaces"] = [ns if ns["type"] != "network" else {"type": "network", "path": path}
                                    for ns in c["linux"]["namespaces"]]
        devices(c, {name: {"name": "ext0"}})
    guest, _ = running(pyoci, bundle, join)
    assert "10.126.0.1/24" in ip("-o", "addr", "show", "ext0", netns_pid=owner_pid)
    pyoci("delete", "--force", guest)
    assert exists("ext0", owner_pid)  # the spec: never moved out; the namespace's owner has it
    pyoci("delete", "--force", owner)
    wait_for(lambda: not exists(peer), "the owner's namespace, and the veth with it, to go", 10)


def test_a_missing_interface_is_refused_and_nothing_moves(pyoci, bundle, veth):
    name, _ = veth("10.127.0.1/24")
    refused(pyoci, bundle, lambda c: devices(c, {name: {}, "pynosuch0": {}}),
            "config.json: linux.netDevices.pynosuch0: no interface pynosuch0 in the runtime's network namespace")
    assert "10.127.0.1/24" in ip("-o", "addr", "show", name)


def test_an_interface_another_container_has_is_refused_naming_it(pyoci, bundle, veth):
    name, _ = veth()
    first, _ = running(pyoci, bundle, lambda c: devices(c, {name: {}}))
    refused(pyoci, bundle, lambda c: devices(c, {name: {}}),
            f"linux.netDevices.{name}: no interface {name} in the runtime's network namespace (container {first} "
            "has it)")


def test_a_name_taken_in_the_containers_namespace_is_refused_and_nothing_moves(pyoci, bundle, veth):
    name, _ = veth("10.128.0.1/24")
    other, _ = veth()
    _, owner_pid = running(pyoci, bundle, lambda c: None)
    path = f"/proc/{owner_pid}/ns/net"

    def join(c):
        c["linux"]["namespaces"] = [ns if ns["type"] != "network" else {"type": "network", "path": path}
                                    for ns in c["linux"]["namespaces"]]
        devices(c, {other: {}, name: {"name": "lo"}})
    refused(pyoci, bundle, join,
            f"linux.netDevices.{name}.name: the container's network namespace already has an interface lo")
    assert exists(other) and "10.128.0.1/24" in ip("-o", "addr", "show", name)


def test_loopback_is_refused(pyoci, bundle):
    refused(pyoci, bundle, lambda c: devices(c, {"lo": {"name": "lo2"}}),
            "linux.netDevices.lo: lo is a loopback interface")


def test_a_create_that_fails_after_the_move_gives_the_interfaces_back(pyoci, bundle, veth):
    name, _ = veth("10.129.0.1/24", "2001:db8:19::1/64")

    def edit(c):
        devices(c, {name: {"name": "c0"}})
        c["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    refused(pyoci, bundle, edit, "hooks.prestart[0] (/bin/false): exit status 1")
    back = ip("-o", "addr", "show", name)
    assert "10.129.0.1/24" in back and "2001:db8:19::1/64" in back
    assert "UP" in ip("-o", "link", "show", name).split("<")[1].split(">")[0].split(",")


def test_state_and_features_say_so(pyoci, bundle, veth):
    name, _ = veth()
    cid, _ = running(pyoci, bundle, lambda c: devices(c, {name: {"name": "c1"}}))
    with open(pyoci.root / cid / "state.json") as f:
        assert json.load(f)["net_devices"] == {name: "c1"}
    assert json.loads(pyoci("features").stdout)["linux"]["netDevices"] == {"enabled": True}
