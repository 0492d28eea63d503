"""Domain names for ``svcctl dns``: the cluster domain and --zone as a user gives them, the labels
svcctl generates, reverse (PTR) names, and the limits DNS puts on names.

Names are kept as text, absolute, lower case, with the trailing dot (``web.shop.svc.cluster.local.``):
there are 100,000s of them and nothing else is done with them than joining, measuring and writing.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from .. import formats

# RFC 1035 2.3.4: a name is at most 255 octets on the wire, which is 253 characters of text
# (without the trailing dot); a label is at most 63.
MAX_NAME = 253
MAX_LABEL = 63

# What a label may hold in svcctl's zones: the DNS-1123 letters, digits and "-" of Kubernetes
# names, and the "_" of SRV owners (RFC 2782). Nothing that a master file reads as syntax ($, ;,
# quotes, parentheses, blanks, "\", "@") can pass it.
LABEL = r"[a-z0-9_-]{1,63}"
SAFE_NAME = re.compile(rf"(?:{LABEL}\.)+\Z")

REVERSE_V4 = "in-addr.arpa"
REVERSE_V6 = "ip6.arpa"


def too_long(name: str) -> bool:
    """Whether an absolute name (with its trailing dot) is longer than DNS allows."""
    return len(name) > MAX_NAME + 1


def endpoint_label(address: str) -> str:
    """The generated label of an endpoint without a hostname (DNS spec 2.1, "hostname": a unique,
    system-assigned identifier): its address with "-" for the dots or colons, as CoreDNS's
    kubernetes plugin makes it (10.244.1.5 -> 10-244-1-5, fd00::5 -> fd00--5). An IPv6 text that
    would end or start with "-" gets a "0" there, so that the label is a valid DNS-1123 label
    (CoreDNS pads only the end)."""
    if ":" not in address:
        return address.replace(".", "-")
    label = address.replace(":", "-").replace(".", "-")  # an IPv4-mapped address has both
    if label.endswith("-"):
        label += "0"
    if label.startswith("-"):
        label = "0" + label
    return label


def reverse_name(address: str) -> str:
    """The PTR owner of an address (DNS spec 2.3.3): the IPv4 octets reversed under in-addr.arpa,
    or the 32 nibbles of the full IPv6 address reversed under ip6.arpa."""
    if ":" not in address:
        return ".".join(reversed(address.split("."))) + f".{REVERSE_V4}."
    nibbles = socket.inet_pton(socket.AF_INET6, address).hex()
    return ".".join(reversed(nibbles)) + f".{REVERSE_V6}."


def cluster_domain(value: str) -> str:
    """The cluster domain as given to --cluster-domain (a trailing dot is allowed, case does not
    matter), without the trailing dot. Raises ValueError saying what is wrong."""
    domain = value.lower().removesuffix(".")
    if formats.dns1123_subdomain(domain) or any(len(label) > MAX_LABEL for label in domain.split(".")):
        raise ValueError(f'"{value}" is not a DNS domain name (labels of a-z, 0-9 and "-", at most 63 characters each)')
    # The longest name svcctl puts directly under the domain is dns-version.<domain>.
    if too_long(f"dns-version.{domain}."):
        raise ValueError(f'"{value}" is too long: names under it would pass the {MAX_NAME} characters of a DNS name')
    return domain


@dataclass(frozen=True)
class ZoneName:
    """A zone svcctl can write: the cluster domain (forward) or a reverse zone."""

    name: str  # absolute, with the trailing dot
    reverse: bool

    def holds(self, name: str) -> bool:
        """Whether an absolute name lies inside this zone."""
        return name == self.name or name.endswith("." + self.name)


def zone_name(value: str, domain: str) -> ZoneName:
    """Parse --zone: the cluster domain, or a reverse zone on label boundaries (RFC 2317's
    classless delegations are not supported): ``in-addr.arpa`` with up to four decimal octets in
    front (``96.10.in-addr.arpa``), or ``ip6.arpa`` with up to 32 hexadecimal nibbles in front
    (``d.f.ip6.arpa``). Raises ValueError saying what is wrong."""
    text = value.lower().removesuffix(".")
    if text == domain:
        return ZoneName(f"{domain}.", False)
    labels = text.split(".")
    if labels[-2:] == REVERSE_V4.split("."):
        octets = labels[:-2]
        if len(octets) <= 4 and all(re.fullmatch(r"0|[1-9][0-9]{0,2}", o) and int(o) <= 255 for o in octets):
            return ZoneName(f"{text}.", True)
    elif labels[-2:] == REVERSE_V6.split("."):
        nibbles = labels[:-2]
        if len(nibbles) <= 32 and all(re.fullmatch(r"[0-9a-f]", n) for n in nibbles):
            return ZoneName(f"{text}.", True)
    raise ValueError(
        f'"{value}" is neither the cluster domain ({domain}) nor a reverse zone '
        f"(e.g. {REVERSE_V4}, 10.{REVERSE_V4}, 96.10.{REVERSE_V4}, {REVERSE_V6}, d.f.{REVERSE_V6})"
    )
