"""Probe packets for ``svcctl trace --kernel``: a node made inside a throwaway network namespace,
and the first packet of a new connection sent through it, as a client, a pod or the node itself
would send it. Back-end neutral: whatever rules are loaded there see the packet.

The node (only ever built inside svcctl.kernel.in_throwaway_netns):

    probe-out --veth-- probe-in    a packet sent on probe-out arrives on probe-in: prerouting
    sink-out  --veth-- sink-in     default routes (IPv4, IPv6): forwarded packets leave here
    lo                             the node's own source address (and --to, when it is taken
                                   as a node address) as a /32 or /128

Packets are made byte by byte (TCP SYN, UDP datagram, SCTP INIT) rather than by a socket's
connect(): so any source address can be used, SCTP needs no kernel module, and nothing waits for
an answer that cannot come. Kernel facts this relies on:

* a packet written to an AF_PACKET socket on one end of a veth pair is received on the other
  end like any arriving packet: it takes the prerouting hook, then routing;
* a raw socket with IPPROTO_RAW sends its own IP header (IPv6 too, since Linux 4.5) through the
  output hook like any locally generated packet, with conntrack and NAT;
* conntrack checks TCP, UDP and SCTP checksums of arriving packets and calls a bad one invalid
  (no ``ct state new``): the checksums must be right;
* forwarding must be on, or a forwarded packet never reaches the forward and postrouting hooks,
  and reverse-path filtering off, or a packet from an address routed elsewhere is dropped.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import subprocess

from ..kernel import KernelError
from ..model import Protocol
from .packet import Packet

PROBE_OUT, PROBE_IN, SINK_OUT, SINK_IN = "probe-out", "probe-in", "sink-out", "sink-in"
# The address masquerading gives forwarded packets (on sink-out): the node's. Link-local and
# discard-only (RFC 6666) ranges, which no Service uses.
SINK_ADDRESS = {4: "169.254.253.1", 6: "100::1"}
FIRST_SOURCE_PORT = 40000
SIOCGIFHWADDR = 0x8927
_PROTO = {Protocol.TCP: socket.IPPROTO_TCP, Protocol.UDP: socket.IPPROTO_UDP, Protocol.SCTP: 132}


def _ip(*args: str) -> None:
    try:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise KernelError("--kernel needs the ip command (iproute2)") from None
    if proc.returncode != 0:
        raise KernelError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _sysctl(name: str, value: str) -> None:
    with open(f"/proc/sys/{name.replace('.', '/')}", "w") as f:  # /proc/sys/net is the caller's namespace's
        f.write(value)


def build_node(packet: Packet, destination_local: bool) -> None:
    """Make the current (throwaway) network namespace the node a probe goes through."""
    for name, value in (
        ("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.conf.default.rp_filter", "0"),
    ):
        _sysctl(name, value)
    _ip("link", "set", "lo", "up")
    for a, b in ((PROBE_OUT, PROBE_IN), (SINK_OUT, SINK_IN)):
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "up")
        _ip("link", "set", b, "up")
    v = packet.version
    bits = 32 if v == 4 else 128
    _ip("address", "add", f"{SINK_ADDRESS[v]}/{bits}", "dev", SINK_OUT, *(("nodad",) if v == 6 else ()))
    _ip(f"-{v}", "route", "add", "default", "dev", SINK_OUT)
    local = ([packet.source] if packet.local else []) + ([packet.destination] if destination_local else [])
    for address in dict.fromkeys(local):  # replace: ::1 is there already
        _ip("address", "replace", f"{address}/{bits}", "dev", "lo", *(("nodad",) if v == 6 else ()))


def send(packet: Packet, count: int, first: int = 0) -> None:
    """``count`` new connections' first packets, from source ports 40000 + first, 40001 +
    first, ...: each one a new conntrack entry, so each takes the NAT chains."""
    datagrams = [datagram(packet, FIRST_SOURCE_PORT + first + i) for i in range(count)]
    if packet.local:
        family = socket.AF_INET if packet.version == 4 else socket.AF_INET6
        with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            for d in datagrams:
                try:
                    s.sendto(d, (packet.destination, 0))
                except OSError:
                    pass  # dropped or rejected on the way out (EPERM): the trace shows where
        return
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((PROBE_OUT, 0))
        ethertype = 0x0800 if packet.version == 4 else 0x86DD
        header = _mac(s, PROBE_IN) + _mac(s, PROBE_OUT) + struct.pack("!H", ethertype)
        for d in datagrams:
            s.send(header + d)


def _mac(s: socket.socket, interface: str) -> bytes:
    info = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", interface.encode()))
    return info[18:24]


# --- packets, byte by byte ----------------------------------------------------------------------


def datagram(packet: Packet, source_port: int) -> bytes:
    """The IP packet: header and the protocol's first segment of a new connection."""
    src, dst = (ipaddress.ip_address(a).packed for a in (packet.source, packet.destination))
    proto = _PROTO[packet.protocol]
    payload = _segment(packet.protocol, source_port, packet.port, src, dst)
    if packet.version == 6:
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + src + dst + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), source_port, 0x4000, 64, proto, 0, src, dst)
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def _segment(protocol: Protocol, sport: int, dport: int, src: bytes, dst: bytes) -> bytes:
    if protocol is Protocol.SCTP:
        # Common header (verification tag 0, as an INIT has), then an INIT chunk of 20 bytes:
        # initiate tag, a_rwnd, 1 outbound and 1 inbound stream, initial TSN.
        init = struct.pack("!BBHIIHHI", 1, 0, 20, 0x5C7C7100 + sport, 65536, 1, 1, 1)
        body = struct.pack("!HHII", sport, dport, 0, 0) + init
        return body[:8] + struct.pack("<I", _crc32c(body)) + body[12:]
    if protocol is Protocol.TCP:
        segment = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)  # SYN
        at = 16
    else:
        data = b"svcctl trace probe\n"
        segment = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
        at = 6
    proto = _PROTO[protocol]
    pseudo = src + dst + (struct.pack("!BBH", 0, proto, len(segment)) if len(src) == 4 else struct.pack("!IxxxB", len(segment), proto))
    checksum = _checksum(pseudo + segment) or 0xFFFF  # UDP: 0 means "none", its complement is sent
    return segment[:at] + struct.pack("!H", checksum) + segment[at + 2:]


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def _crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli), SCTP's checksum (RFC 9260, appendix A)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

