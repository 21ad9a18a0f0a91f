"""The little of rtnetlink(7) that linux.netDevices needs: find an interface, list its addresses, bring it
down or up, move (and rename) it into another network namespace, add an address. Plain sockets and
struct packing: no library, and a socket in a container's namespace comes from shim.socket_in_netns.
"""
from __future__ import annotations

import errno
import os
import socket
import struct

from ..record import Record, field

RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 2, 4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_ADDRESS, IFLA_IFNAME, IFLA_NET_NS_FD = 1, 3, 28
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
IFA_F_PERMANENT = 0x80
IFF_UP, IFF_LOOPBACK = 0x1, 0x8
RT_SCOPE_UNIVERSE = 0

HEADER = struct.Struct("=IHHII")      # struct nlmsghdr
IFINFO = struct.Struct("=BxHiII")     # struct ifinfomsg
IFADDR = struct.Struct("=BBBBI")      # struct ifaddrmsg
ATTR = struct.Struct("=HH")           # struct rtattr


class Link(Record):
    index: int
    name: str
    flags: int
    mac: bytes = b""


class Address(Record):
    family: int
    prefixlen: int
    scope: int
    flags: int
    attrs: dict[int, bytes] = field(default_factory=dict)  # IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST as sent

    def text(self) -> str:
        raw = self.attrs.get(IFA_LOCAL) or self.attrs.get(IFA_ADDRESS, b"")
        return f"{socket.inet_ntop(self.family, raw)}/{self.prefixlen}" if raw else "?"


def _attr(kind: int, data: bytes) -> bytes:
    length = ATTR.size + len(data)
    return ATTR.pack(length, kind) + data + b"\0" * (-length % 4)


def _attrs(data: bytes) -> dict[int, bytes]:
    found, at = {}, 0
    while at + ATTR.size <= len(data):
        length, kind = ATTR.unpack_from(data, at)
        if length < ATTR.size:
            break
        found[kind & 0x3FFF] = data[at + ATTR.size:at + length]
        at += length + (-length % 4)
    return found


class Netlink:
    """One NETLINK_ROUTE socket (of the namespace it was made in) and its requests."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          socket.NETLINK_ROUTE)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Sends one request; the replies (type, payload) until its ack or the end of its dump. The kernel's
        error is an OSError with its errno."""
        self.seq += 1
        self.sock.sendto(HEADER.pack(HEADER.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0)
                         + body, (0, 0))
        replies = []
        while True:
            data = self.sock.recv(1 << 16)
            at = 0
            while at + HEADER.size <= len(data):
                length, rtype, rflags, seq, _ = HEADER.unpack_from(data, at)
                payload = data[at + HEADER.size:at + length]
                at += length + (-length % 4)
                if seq != self.seq:
                    continue
                if rtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return replies
                if rtype == NLMSG_DONE:
                    return replies
                replies.append((rtype, payload))

    def links(self) -> list[Link]:
        return [self._link(p) for t, p in self.request(RTM_GETLINK, NLM_F_DUMP, IFINFO.pack(0, 0, 0, 0, 0))
                if t == RTM_NEWLINK]

    def link(self, name: str) -> Link | None:
        try:
            replies = self.request(RTM_GETLINK, 0,
                                   IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, name.encode() + b"\0"))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return next((self._link(p) for t, p in replies if t == RTM_NEWLINK), None)

    @staticmethod
    def _link(payload: bytes) -> Link:
        _, _, index, flags, _ = IFINFO.unpack_from(payload)
        attrs = _attrs(payload[IFINFO.size:])
        return Link(index, attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace"), flags,
                    attrs.get(IFLA_ADDRESS, b""))

    def addresses(self, index: int) -> list[Address]:
        found = []
        for rtype, payload in self.request(RTM_GETADDR, NLM_F_DUMP, IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            if rtype != RTM_NEWADDR:
                continue
            family, prefixlen, flags, scope, at = IFADDR.unpack_from(payload)
            if at != index:
                continue
            attrs = _attrs(payload[IFADDR.size:])
            if IFA_FLAGS in attrs:
                flags = struct.unpack("=I", attrs[IFA_FLAGS][:4])[0]
            kept = {k: v for k, v in attrs.items() if k in (IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST)}
            found.append(Address(family, prefixlen, scope, flags, kept))
        return found

    def set_up(self, index: int, up: bool) -> None:
        self.request(RTM_NEWLINK, 0, IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP))

    def move(self, index: int, name: str, netns_fd: int) -> None:
        """Into netns_fd's namespace under name, in one request (a "%d" in name: the kernel picks a free one)."""
        self.request(RTM_NEWLINK, 0, IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)
                     + _attr(IFLA_IFNAME, name.encode() + b"\0") + _attr(IFLA_NET_NS_FD, struct.pack("=I", netns_fd)))

    def add_address(self, index: int, a: Address) -> None:
        body = IFADDR.pack(a.family, a.prefixlen, 0, a.scope, index)
        body += b"".join(_attr(k, v) for k, v in a.attrs.items())
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
