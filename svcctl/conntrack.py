"""UDP conntrack cleanup after an apply, as kube-proxy does it. UDP has no end of connection: a
client that keeps its source port keeps one conntrack entry for as long as it keeps sending, and
the nat hooks see only an entry's first packet. So two kinds of entries outlive the rules that
would treat them otherwise:

- those DNATed to an endpoint an apply removed: the client keeps talking to the gone backend;
- those to a Service port's address that began before any rule of svcctl's DNATed it (the
  Service did not exist yet, or svcctl's rules were not loaded): not DNATed, they keep going
  where the node's routes sent them (an externalIP's real host, the node itself for a NodePort)
  once the port has endpoints.

The cleanup runs after the commit: it never raises, what it cannot do is a warning.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from typing import NamedTuple

from .backends import ApplyResult
from .formats import cidr_holding, ip_version

_MISSING = "{} is not installed: UDP flows {} were not cleared (apt-get install {})"
# `conntrack -L` prints the original tuple, then the reply tuple: src= dst= sport= dport= each,
# addresses as inet_ntop writes them (IPv6 compressed, lower case).
_FLOW = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?src=(\S+) dst=\S+ sport=(\d+) ")
_DELETED = re.compile(r"(\d+) flow entries have been deleted")


class UdpFrontend(NamedTuple):
    """A UDP Service port as its rules catch it, of IP ``version`` 4 or 6: a ClusterIP,
    externalIP or LoadBalancer IP and port; or (``address`` "") a NodePort, on the node's own
    addresses that are ``within`` its --nodeport-addresses ranges (none: all of them)."""

    version: int
    address: str
    port: int
    within: tuple[str, ...] = ()


class Forgotten(NamedTuple):
    """What a cleanup deleted entries for: removed endpoints, new frontends; and what it could
    not do."""

    endpoints: tuple[tuple[str, int], ...]
    frontends: tuple[UdpFrontend, ...]
    warnings: tuple[str, ...]


def committed(changed: bool, summary: str, removed: tuple[tuple[str, int], ...], new: tuple[UdpFrontend, ...]) -> ApplyResult:
    """What an apply (or an agent's sync) did, once its commit is in: the UDP flows it leaves
    behind deleted (forget_udp_flows), and said."""
    forgotten = forget_udp_flows(removed, new)
    return ApplyResult(changed, summary, "", forgotten.endpoints, forgotten.warnings, forgotten.frontends)


def forget_udp_flows(removed: tuple[tuple[str, int], ...], new: tuple[UdpFrontend, ...] = ()) -> Forgotten:
    """After a commit: delete the UDP conntrack entries DNATed to the ``removed`` endpoints, and
    those to the ``new`` frontends (the ones the rules before the commit did not DNAT) that were
    not DNATed."""
    if not removed and not new:
        return Forgotten((), (), ())
    tool = shutil.which("conntrack")
    if tool is None:
        warnings = [_MISSING.format("conntrack", "to removed endpoints", "conntrack")] if removed else []
        warnings += [_MISSING.format("conntrack", "that began before their Service port", "conntrack")] if new else []
        return Forgotten((), (), tuple(warnings))
    warnings = []
    cleared = []
    for ip, port in removed:
        if _delete(tool, ip_version(ip), warnings, "--dst-nat", ip, "--reply-port-src", str(port)):
            cleared.append((ip, port))
    return Forgotten(tuple(cleared), _forget_bypassing(tool, new, warnings), tuple(warnings))


def _forget_bypassing(tool: str, frontends: tuple[UdpFrontend, ...], warnings: list[str]) -> tuple[UdpFrontend, ...]:
    """Delete the entries to these frontends that were not DNATed. One listing per family,
    however many frontends (a first apply names every UDP port of the cluster); matches are
    rare, each deleted by its exact tuple. Returns the frontends that had some."""
    hit: set[UdpFrontend] = set()
    for version in sorted({f.version for f in frontends}):
        wanted = [f for f in frontends if f.version == version]
        node = _node_addresses(version, warnings) if any(not f.address for f in wanted) else set()
        listed = _conntrack(tool, version, "-L", warnings)
        if listed is None or listed.returncode != 0:
            if listed is not None:
                warnings.append(f"conntrack -L failed: {listed.stderr.strip()}: UDP flows that began before their Service port were not cleared")
            continue
        for flow, frontend in bypassing(listed.stdout, wanted, node):
            hit.add(frontend)
            src, dst, sport, dport = flow
            _delete(tool, version, warnings, "--orig-src", src, "--orig-dst", dst, "--orig-port-src", sport, "--orig-port-dst", dport)
    return tuple(sorted(hit))


def bypassing(listing: str, frontends: list[UdpFrontend], node: set[str]) -> list[tuple[tuple[str, str, str, str], UdpFrontend]]:
    """The flows of a ``conntrack -L -p udp`` listing sent to one of these frontends (of one
    family) and answered from where they were sent: not DNATed. A NodePort's are those sent to
    one of the ``node``'s addresses within its ranges (flows the node forwards may have that port
    too). Each as its original tuple (source, destination, source port, destination port) with
    the frontend it bypassed."""
    by_address = {(ipaddress.ip_address(f.address).compressed, f.port): f for f in frontends if f.address}
    by_node_port = {f.port: f for f in frontends if not f.address}
    found = []
    for flow in _FLOW.finditer(listing):
        src, dst, sport, dport, reply_src, reply_sport = flow.groups()
        if reply_sport != dport or reply_src != dst:
            continue  # DNATed: the rules took it
        frontend = by_address.get((dst, int(dport)))
        if frontend is None and dst in node:
            frontend = by_node_port.get(int(dport))
            if frontend is not None and frontend.within and not cidr_holding(dst, frontend.within):
                frontend = None
        if frontend is not None:
            found.append(((src, dst, sport, dport), frontend))
    return found


def _node_addresses(version: int, warnings: list[str]) -> set[str]:
    """The node's own addresses of one family, loopback ones left out (NodePorts do not answer
    on them). Empty, with a warning, if iproute2's ``ip`` cannot tell: then no NodePort flow is
    deleted."""
    tool = shutil.which("ip")
    if tool is None:
        warnings.append(_MISSING.format("ip", "that began before their NodePort", "iproute2"))
        return set()
    done = _run([tool, "-j", f"-{version}", "address", "show"], warnings)
    if done is None:
        return set()
    try:
        links = json.loads(done.stdout or "[]")
    except ValueError:
        links = []
    if done.returncode != 0 or not isinstance(links, list):
        warnings.append(f"ip address show failed: {done.stderr.strip()}: UDP flows that began before their NodePort were not cleared")
        return set()
    return {ipaddress.ip_address(a["local"]).compressed for link in links for a in link.get("addr_info", ()) if a.get("scope") != "host" and "local" in a}


def _delete(tool: str, version: int, warnings: list[str], *selection: str) -> int:
    """Delete the UDP entries matching ``selection``: how many there were. A failure (no
    conntrack netlink support, say) is a warning; exit status 1 with a count only means that
    no entry matched."""
    done = _conntrack(tool, version, "-D", warnings, *selection)
    if done is None:
        return 0
    deleted = _DELETED.search(done.stderr)
    if deleted is None:
        warnings.append(f"conntrack -D {' '.join(selection)} failed: {done.stderr.strip() or f'exit status {done.returncode}'}")
        return 0
    return int(deleted[1])


def _conntrack(tool: str, version: int, command: str, warnings: list[str], *selection: str) -> subprocess.CompletedProcess[str] | None:
    # Always with the family: without -f, conntrack 1.4.7 lists both.
    return _run([tool, command, "-f", "ipv6" if version == 6 else "ipv4", "-p", "udp", *selection], warnings)


def _run(argv: list[str], warnings: list[str]) -> subprocess.CompletedProcess[str] | None:
    """The program's outcome; None, with a warning, if it could not run to its end."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        warnings.append(f"{argv[0]} {argv[1]}: {err}")
        return None
