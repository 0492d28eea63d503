"""The UDP conntrack cleanup's choice of flows (svcctl.conntrack.bypassing), on `conntrack -L -p
udp` lines as conntrack-tools 1.4.7 prints them. tests/e2e/test_conntrack.py deletes real flows."""

from __future__ import annotations

from svcctl.conntrack import UdpFrontend, bypassing

LISTING = """\
udp      17 29 src=192.168.50.2 dst=198.51.100.60 sport=40053 dport=53 [UNREPLIED] src=198.51.100.60 dst=192.168.50.2 sport=53 dport=40053 mark=0 use=1
udp      17 27 src=192.168.50.2 dst=10.96.0.60 sport=40054 dport=53 src=10.244.1.2 dst=192.168.50.2 sport=8080 dport=40054 mark=0 use=1
udp      17 25 src=192.168.50.3 dst=192.168.50.1 sport=40053 dport=30053 [UNREPLIED] src=192.168.50.1 dst=192.168.50.3 sport=30053 dport=40053 mark=0 use=1
udp      17 25 src=192.168.50.3 dst=192.168.50.1 sport=40055 dport=30054 [UNREPLIED] src=192.168.50.1 dst=192.168.50.3 sport=30054 dport=40055 mark=0 use=1
udp      17 23 src=192.168.50.2 dst=198.51.100.60 sport=40056 dport=54 [UNREPLIED] src=198.51.100.60 dst=192.168.50.2 sport=54 dport=40056 mark=0 use=1
"""
LISTING6 = """\
udp      17 29 src=fd00:50::2 dst=fd00:10:96::60 sport=40053 dport=53 [UNREPLIED] src=fd00:10:96::60 dst=fd00:50::2 sport=53 dport=40053 mark=0 use=1
"""


def test_flows_to_a_new_frontend_that_were_not_dnated_are_chosen() -> None:
    external, node_port = UdpFrontend(4, "198.51.100.60", 53), UdpFrontend(4, "", 30053)
    cluster_ip = UdpFrontend(4, "10.96.0.60", 53)
    assert bypassing(LISTING, [external, node_port, cluster_ip], {"192.168.50.1", "10.244.1.1"}) == [
        (("192.168.50.2", "198.51.100.60", "40053", "53"), external),
        (("192.168.50.3", "192.168.50.1", "40053", "30053"), node_port),  # a NodePort: on any node address
    ]  # not the DNATed flow to 10.96.0.60, nor those to other ports


def test_a_node_port_flow_counts_only_when_sent_to_the_node_within_its_ranges() -> None:
    """A flow the node forwards (here to 192.168.50.1 as another host) may have the NodePort's
    port too; it is no NodePort flow. Nor is one to a node address outside --nodeport-addresses."""
    assert bypassing(LISTING, [UdpFrontend(4, "", 30053)], {"10.244.1.1"}) == []
    assert bypassing(LISTING, [UdpFrontend(4, "", 30053, ("10.244.0.0/16",))], {"192.168.50.1", "10.244.1.1"}) == []
    inside = UdpFrontend(4, "", 30053, ("10.244.0.0/16", "192.168.50.0/24"))
    assert bypassing(LISTING, [inside], {"192.168.50.1"}) == [(("192.168.50.3", "192.168.50.1", "40053", "30053"), inside)]


def test_ipv6_addresses_match_however_the_manifest_spells_them() -> None:
    frontend = UdpFrontend(6, "FD00:10:96:0::60", 53)
    assert bypassing(LISTING6, [frontend], set()) == [(("fd00:50::2", "fd00:10:96::60", "40053", "53"), frontend)]


def test_nothing_is_chosen_without_frontends() -> None:
    assert bypassing(LISTING, [], {"192.168.50.1"}) == []


def test_a_conntrack_that_fails_is_a_warning_not_a_count(tmp_path) -> None:
    """conntrack's own outcomes: 'N flow entries have been deleted' (exit 1 when N is 0), or an
    error (no netlink support, say), which is a warning: forget_udp_flows never raises."""
    from svcctl.conntrack import _delete

    tool = tmp_path / "conntrack"
    tool.write_text('#!/bin/sh\necho "conntrack v1.4.7 (conntrack-tools): Operation failed: not supported" >&2\nexit 1\n')
    tool.chmod(0o755)
    warnings: list[str] = []
    assert _delete(str(tool), 4, warnings, "--dst-nat", "10.0.0.1") == 0
    assert warnings == ["conntrack -D --dst-nat 10.0.0.1 failed: conntrack v1.4.7 (conntrack-tools): Operation failed: not supported"]
    tool.write_text('#!/bin/sh\necho "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted." >&2\nexit 1\n')
    warnings.clear()
    assert _delete(str(tool), 4, warnings, "--dst-nat", "10.0.0.1") == 0 and warnings == []
