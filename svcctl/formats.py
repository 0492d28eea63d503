"""The API server's format checks for names, labels, ports and addresses.

Each check returns the messages (none when the value is fine), worded as the API server words
them, so a problem reads the same as ``kubectl apply`` would report it. Name checks are memoized:
a cluster dump repeats the same node names, namespaces and label keys thousands of times.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache, wraps
from typing import Callable, Iterable, Sequence

def _memo(check: Callable[[str], Sequence[str]]) -> Callable[[str], Sequence[str]]:
    cached = lru_cache(maxsize=1 << 16)(lambda value: tuple(check(value)))
    return wraps(check)(cached)


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_QUALIFIED_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_LABEL_VALUE = _QUALIFIED_NAME_PART
_IANA_SVC_NAME = re.compile(r"[-a-z0-9]+\Z")
_HAS_LETTER = re.compile(r"[a-z]")


@_memo
def dns1123_label(value: str) -> Sequence[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character"
        )
    return errs


@_memo
def dns1035_label(value: str) -> Sequence[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        errs.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character"
        )
    return errs


@_memo
def dns1123_subdomain(value: str) -> Sequence[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return errs


@_memo
def iana_svc_name(value: str) -> Sequence[str]:
    """A named port: at most 15 characters, [-a-z0-9], a letter somewhere, no '--', no '-' at the ends."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_SVC_NAME.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


@_memo
def qualified_name(value: str) -> Sequence[str]:
    """A label key or annotation key: ``[prefix/]name``; prefix a DNS subdomain, name <= 63."""
    prefix, _, name = value.rpartition("/")
    errs = []
    if "/" in prefix:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'"]
    if value.endswith("/") or (prefix == "" and value.startswith("/")):
        return ["prefix part and name part must be non-empty"]
    if prefix:
        errs += [f"prefix part {e}" for e in dns1123_subdomain(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_PART.match(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return errs


@_memo
def label_value(value: str) -> Sequence[str]:
    if value == "":
        return []
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return errs


def port_number(value: int) -> Sequence[str]:
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def packed_ip(value: str) -> bytes | None:
    """The address's bytes (4 or 16), or None if it is not an IP address as the API server takes
    it: no zone, no leading zeros. inet_pton is strict and ~20x faster than the ipaddress module,
    which matters for 100,000 endpoints."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except (OSError, TypeError):
        return None


def address_order(address: str) -> bytes:
    """Sort key of a valid address: its bytes (IPv4 before IPv6, numeric within a family)."""
    packed = packed_ip(address)
    assert packed is not None, address  # valid: checked by validate
    return packed


def ip_version(value: str) -> int:
    """4 or 6, for an address already known to be valid (IPv6 text always holds a ':')."""
    return 6 if ":" in value else 4


def canonical_ip(value: str) -> str:
    """The canonical text of a valid address (``fd00:0::1`` -> ``fd00::1``). A valid IPv4
    address is canonical already: inet_pton accepts only plain dotted quads."""
    if ":" not in value:
        return value
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, value))


def endpoint_text(address: str, port: int) -> str:
    """``IP:PORT``, or ``[IP6]:PORT``: an address and port as people and nft write them."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    packed = packed_ip(value)
    return None if packed is None else ipaddress.ip_address(packed)


def ip_address(value: str) -> Sequence[str]:
    return [] if packed_ip(value) is not None else ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]


def non_special_ip(value: str) -> Sequence[str]:
    """Endpoint addresses and externalIPs may not be unspecified, loopback, link-local or
    link-local multicast: traffic to them would never leave the node (ValidateNonSpecialIP)."""
    b = packed_ip(value)
    if b is None:
        return ip_address(value)
    if len(b) == 16 and b[:12] == bytes(10) + b"\xff\xff":
        b = b[12:]  # Go's net.IP treats an IPv4-mapped address (::ffff:127.0.0.1) as the IPv4 one
    if len(b) == 4:
        unspecified, loopback = b == bytes(4), b[0] == 127
        link_local, multicast = b[:2] == b"\xa9\xfe", b[:3] == b"\xe0\x00\x00"  # 169.254/16, 224.0.0/24
    else:
        unspecified, loopback = b == bytes(16), b == bytes(15) + b"\x01"
        # fe80::/10; link-local multicast is any ffX2:: (Go: ip[1]&0x0f == 0x02, whatever the flags)
        link_local, multicast = b[0] == 0xFE and b[1] & 0xC0 == 0x80, b[0] == 0xFF and b[1] & 0x0F == 0x02
    if unspecified:
        return ["may not be unspecified (0.0.0.0, ::)"]
    if loopback:
        return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    if link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    if multicast:
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    return []


def cidr_holding(address: str, cidrs: Iterable[str]) -> str | None:
    """The first of ``cidrs`` that holds ``address``."""
    ip = ipaddress.ip_address(address)
    return next((c for c in cidrs if ip in ipaddress.ip_network(c, strict=False)), None)


def parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR with host bits allowed (the API server accepts 10.0.0.1/8 in source ranges). The
    prefix is a length, as Go's ParseCIDR reads it: not a netmask (Python would take 10.0.0.0/255.0.0.0)."""
    address, _, prefix = value.partition("/")
    if not prefix.isascii() or not prefix.isdigit() or "%" in address:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


_BAD_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_LEADING_ZERO = re.compile(r"(?:^|[./])0\d")  # in an IPv4 octet or in the prefix length


def cidr(value: str) -> Sequence[str]:
    return [] if parse_cidr(value) is not None else [_BAD_CIDR]


def canonical_cidr(value: str) -> Sequence[str]:
    """A CIDR as fields new since Kubernetes 1.33 take it (IsValidCIDR; ServiceCIDR's cidrs): a
    subnet, no bits set after the prefix, no leading zeros, in the form Go prints it."""
    address, _, prefix = value.partition("/")
    if _LEADING_ZERO.search(prefix if ":" in address else value):
        # Go's sloppy parser takes 010.0.0.0/8 (as 10, where libc reads octal 8); the strict one does not.
        sloppy = re.sub(r"(?<![\d])0+(?=\d)", "", value)
        return ["must not have leading 0s in IP or prefix length"] if parse_cidr(sloppy) is not None else [_BAD_CIDR]
    net = parse_cidr(value)
    if net is None:
        return [_BAD_CIDR]
    if net.version == 6 and net.network_address.ipv4_mapped is not None:
        return ["must not have an IPv4-mapped IPv6 address"]
    if ipaddress.ip_address(address) != net.network_address:
        return ["must not have bits set beyond the prefix length"]
    if str(net) != value:
        return [f'must be in canonical form ("{net}")']
    return []
