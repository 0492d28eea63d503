"""UDP conntrack cleanup after an apply, as kube-proxy does it. UDP has no end of connection: a
client that keeps its source port keeps one conntrack entry for as long as it keeps sending, and
the nat hooks see only an entry's first packet. So two kinds of entries outlive the rules that
would treat them otherwise:

- those DNATed to an endpoint an apply removed: the client keeps talking to the gone backend;
- those to a Service port's address that began before any rule of svcctl's DNATed it (the
  Service did not exist yet, or svcctl's rules were not loaded): not DNATed, they keep going
  where the node's routes sent them (an externalIP's real host, the node itself for a NodePort)
  once the port has endpoints.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from typing import NamedTuple

from .formats import ip_version

_MISSING = "conntrack is not installed: UDP flows {} were not cleared (apt-get install conntrack)"
# `conntrack -L` prints the original tuple, then the reply tuple: src= dst= sport= dport= each.
_FLOW = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?src=(\S+) dst=\S+ sport=(\d+) ")


class UdpFrontend(NamedTuple):
    """A UDP Service port as its rules catch it: a ClusterIP, externalIP or LoadBalancer IP and
    port, or (``address`` "") a NodePort on any address of the node, of IP ``version`` 4 or 6."""

    version: int
    address: str
    port: int


class Forgotten(NamedTuple):
    """What a cleanup deleted: the conntrack entries to these removed endpoints, and those that
    bypassed these new frontends; and what it could not do."""

    endpoints: tuple[tuple[str, int], ...]
    frontends: tuple[UdpFrontend, ...]
    warnings: tuple[str, ...]


def forget_udp_flows(removed: tuple[tuple[str, int], ...], new: tuple[UdpFrontend, ...] = ()) -> Forgotten:
    """After a commit: delete the UDP conntrack entries DNATed to the ``removed`` endpoints, and
    those to the ``new`` frontends (the ones the rules before the commit did not DNAT) that were
    not DNATed."""
    if not removed and not new:
        return Forgotten((), (), ())
    tool = shutil.which("conntrack")
    if tool is None:
        warnings: tuple[str, ...] = (_MISSING.format("to removed endpoints"),) if removed else ()
        warnings += (_MISSING.format("that began before their Service port"),) if new else ()
        return Forgotten((), (), warnings)
    for ip, port in removed:
        # Exit status 1 only means that no entry matched.
        _conntrack(tool, ip_version(ip), "-D", "--dst-nat", ip, "--reply-port-src", str(port))
    return Forgotten(removed, _forget_bypassing(tool, new), ())


def _forget_bypassing(tool: str, frontends: tuple[UdpFrontend, ...]) -> tuple[UdpFrontend, ...]:
    """Delete the entries to these frontends that were not DNATed. One listing per family,
    however many frontends (a first apply names every UDP port of the cluster); matches are
    rare, each deleted by its exact tuple. Returns the frontends that had some."""
    hit: set[UdpFrontend] = set()
    for version in sorted({f.version for f in frontends}):
        wanted = [f for f in frontends if f.version == version]
        node = _node_addresses(version) if any(not f.address for f in wanted) else set()
        for flow, frontend in bypassing(_conntrack(tool, version, "-L"), wanted, node):
            hit.add(frontend)
            src, dst, sport, dport = flow
            _conntrack(tool, version, "-D", "--orig-src", src, "--orig-dst", dst, "--orig-port-src", sport, "--orig-port-dst", dport)
    return tuple(sorted(hit))


def bypassing(listing: str, frontends: list[UdpFrontend], node: set[str]) -> list[tuple[tuple[str, str, str, str], UdpFrontend]]:
    """The flows of a ``conntrack -L -p udp`` listing sent to one of these frontends (of one
    family) and answered from where they were sent: not DNATed. A NodePort's are those sent to
    one of the ``node``'s addresses (flows the node forwards may have that port too). Each as
    its original tuple (source, destination, source port, destination port) with the frontend
    it bypassed."""
    wanted = {(_canonical(f.address) if f.address else "", f.port): f for f in frontends}
    found = []
    for flow in _FLOW.finditer(listing):
        src, dst, sport, dport, reply_src, reply_sport = flow.groups()
        if reply_sport != dport or _canonical(reply_src) != _canonical(dst):
            continue  # DNATed: the rules took it
        to = _canonical(dst)
        frontend = wanted.get((to, int(dport))) or (wanted.get(("", int(dport))) if to in node else None)
        if frontend is not None:
            found.append(((src, dst, sport, dport), frontend))
    return found


def _node_addresses(version: int) -> set[str]:
    """The node's own addresses of one family, loopback ones left out (NodePorts do not answer
    on them). Empty if iproute2's ``ip`` cannot tell: then no NodePort flow is deleted."""
    done = subprocess.run(["ip", "-j", f"-{version}", "address", "show"], capture_output=True, text=True, check=False)
    try:
        links = json.loads(done.stdout or "[]")
    except ValueError:
        return set()
    return {_canonical(a["local"]) for link in links for a in link.get("addr_info", ()) if a.get("scope") != "host" and "local" in a}


def _canonical(address: str) -> str:
    # conntrack prints IPv6 addresses compressed; manifests may spell them otherwise.
    return address if ":" not in address else ipaddress.IPv6Address(address).compressed


def _conntrack(tool: str, version: int, command: str, *selection: str) -> str:
    # Always with the family: without -f, conntrack 1.4.7 lists both.
    family = ["-f", "ipv6" if version == 6 else "ipv4"]
    done = subprocess.run([tool, command, *family, "-p", "udp", *selection], capture_output=True, text=True, check=False)
    return done.stdout
