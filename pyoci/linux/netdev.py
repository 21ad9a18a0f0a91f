"""linux.netDevices: host interfaces moved into the container's network namespace, as runtime-spec 1.3
says and runc 1.3 does it: brought down, moved and renamed in one request, their permanent addresses of
global scope added again there (the kernel drops addresses on a move), then brought up.

Everything is checked before anything moves (each interface is on the host and may move, each name is free
in the container's namespace), so a refusal moves nothing. A create that fails after the move gives them
back to the host, with their names, addresses and state, before its undo ends the namespace (which would
destroy a virtual interface). Once created, the container's namespace owns them: the spec forbids moving
them out again, and when the namespace ends the kernel moves physical interfaces back to the host and
destroys virtual ones (veth, dummy, ...).
"""
from __future__ import annotations

import os

from ..errors import ConfigError, PyociError
from ..record import Record, field
from .netlink import IFA_F_PERMANENT, IFF_LOOPBACK, IFF_UP, RT_SCOPE_UNIVERSE, Address, Link, Netlink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


class Moved(Record):
    host_name: str
    name: str  # in the container's namespace (a "%d" template resolved)
    was_up: bool
    addresses: list[Address] = field(default_factory=list)


class Devices(Record):
    """The interfaces a create moved, and a handle on the namespace that holds them (an open fd keeps a
    namespace alive: the undo can still give them back after the container's processes are gone)."""
    netns_fd: int
    moved: list[Moved] = field(default_factory=list)

    def close(self) -> None:
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1


def _netlink_in(netns_fd: int) -> Netlink:
    import socket

    from .shim import socket_in_netns

    return Netlink(socket_in_netns(netns_fd, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE))


def _kept(addresses: list[Address]) -> list[Address]:
    """The addresses the spec says go along: permanent ones of global scope (no link-local, no DHCP lease)."""
    return [a for a in addresses if a.flags & IFA_F_PERMANENT and a.scope == RT_SCOPE_UNIVERSE]


def _check(devices: dict[str, str], host: Netlink, inside: Netlink,
           holder: Callable[[str], str | None]) -> dict[str, Link]:
    links: dict[str, Link] = {}
    present = {link.name for link in inside.links()}
    for name, new in devices.items():
        where = f"linux.netDevices.{name}"
        link = host.link(name)
        if link is None:
            other = holder(name)
            raise ConfigError(f"no interface {name} in the runtime's network namespace" +
                              (f" (container {other} has it)" if other else ""), path=where)
        if link.flags & IFF_LOOPBACK:
            raise ConfigError(f"{name} is a loopback interface: it cannot leave its namespace", path=where)
        if "%d" not in new and new in present:
            raise ConfigError(f"the container's network namespace already has an interface {new}",
                              path=f"{where}.name" if new != name else where)
        links[name] = link
    return links


def move_in(devices: dict[str, str], netns_path: str, holder: Callable[[str], str | None]) -> Devices:
    """Moves the interfaces (host name → name inside) into the namespace at netns_path. holder names the
    container that has an interface the host lacks, if any. On failure nothing stays moved."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    result = Devices(fd)
    host, inside = Netlink(), None
    try:
        inside = _netlink_in(fd)
        links = _check(devices, host, inside, holder)
        for name, new in devices.items():
            _move(host, inside, fd, links[name], new, result)
    except BaseException:
        give_back(result)
        raise
    finally:
        host.close()
        if inside:
            inside.close()
    return result


def _move(host: Netlink, inside: Netlink, fd: int, link: Link, new: str, result: Devices) -> None:
    where = f"linux.netDevices.{link.name}"
    addresses = _kept(host.addresses(link.index))
    try:
        host.set_up(link.index, False)
        host.move(link.index, new, fd)
    except OSError as exc:
        host.set_up(link.index, bool(link.flags & IFF_UP))
        raise PyociError(f"{where}: move into the container's network namespace", exc.errno) from None
    moved = Moved(link.name, _found(inside, link, new), bool(link.flags & IFF_UP), addresses)
    result.moved.append(moved)
    index = inside.link(moved.name).index
    for a in addresses:
        try:
            inside.add_address(index, a)
        except OSError as exc:
            raise PyociError(f"{where}: add address {a.text()} in the container", exc.errno) from None
    try:
        inside.set_up(index, True)
    except OSError as exc:
        raise PyociError(f"{where}: set {moved.name} up in the container", exc.errno) from None


def _found(inside: Netlink, link: Link, new: str) -> str:
    """The interface's name in the container (what a "%d" template became): by its name, else its index,
    else its hardware address."""
    if "%d" not in new:
        return new
    links = inside.links()
    match = next((x for x in links if x.index == link.index and x.mac == link.mac), None)
    match = match or next((x for x in links if link.mac and x.mac == link.mac), None)
    if match is None:
        raise PyociError(f"linux.netDevices.{link.name}: moved, but not found in the container's namespace")
    return match.name


def give_back(devices: Devices) -> None:
    """A failed create's undo: each moved interface back to the runtime's namespace under its host name, with
    its addresses and its state, best effort (what cannot be given back is destroyed with the namespace)."""
    if not devices.moved:
        devices.close()
        return
    host_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    host, inside = Netlink(), None
    try:
        inside = _netlink_in(devices.netns_fd)
        for m in reversed(devices.moved):
            try:
                link = inside.link(m.name)
                if link is None:
                    continue
                inside.set_up(link.index, False)
                inside.move(link.index, m.host_name, host_fd)
                back = host.link(m.host_name)
                for a in m.addresses:
                    host.add_address(back.index, a)
                if m.was_up:
                    host.set_up(back.index, True)
            except OSError:
                continue
    finally:
        os.close(host_fd)
        host.close()
        if inside:
            inside.close()
        devices.moved.clear()
        devices.close()
