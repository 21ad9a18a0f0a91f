"""rtnetlink packing and the address rule of linux.netDevices (pure logic: no socket, no root)."""
from __future__ import annotations

import socket

from pyoci.linux import netdev, netlink


def test_attributes_are_padded_and_read_back():
    data = netlink._attr(netlink.IFLA_IFNAME, b"eth0\0") + netlink._attr(netlink.IFLA_NET_NS_FD, b"\x07\0\0\0")
    assert len(data) % 4 == 0 and len(data) == 12 + 8
    assert netlink._attrs(data) == {netlink.IFLA_IFNAME: b"eth0\0", netlink.IFLA_NET_NS_FD: b"\x07\0\0\0"}


def test_truncated_attributes_stop_the_reader():
    assert netlink._attrs(b"\x02\0\x03\0junk") == {}


def address(flags: int, scope: int) -> netlink.Address:
    return netlink.Address(socket.AF_INET, 24, scope, flags, {netlink.IFA_LOCAL: socket.inet_aton("10.0.0.1")})


def test_only_permanent_global_addresses_go_along():
    permanent, lease = netlink.IFA_F_PERMANENT, 0
    kept = netdev._kept([address(permanent, 0), address(lease, 0), address(permanent, 253), address(permanent, 200)])
    assert kept == [address(permanent, 0)]
    assert kept[0].text() == "10.0.0.1/24"
