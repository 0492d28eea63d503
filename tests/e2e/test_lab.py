"""Self-test of the network-namespace lab, with real traffic.

Needs root, iproute2, nft and /usr/bin/python3; skipped otherwise. One lab (3 pods, 1 client) is
shared by the module; every test that loads rules removes its table again.
"""

import os
import shutil
import subprocess

import pytest

from lab import (POD_GATEWAY4, POD_GATEWAY6, PREFIX, Lab, LabError, Rejected, Timeout,
                 cleanup_stale, pods_seen, run)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft")),
                       reason="needs iproute2 (ip) and nft"),
    pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="needs /usr/bin/python3"),
]

FAMILIES = ["ip4", "ip6"]


@pytest.fixture(scope="module")
def lab():
    with Lab(pods=["pod-a", "pod-b", "pod-c"], clients=["client"]) as lab:
        yield lab


@pytest.fixture
def ruleset(lab):
    """Load ruleset text into the node; delete the tables it names after the test."""
    tables = []

    def load(text):
        lab.nft(text)
        tables.extend(line.strip(" {") for line in text.splitlines()
                      if line.startswith("table "))

    yield load
    for table in tables:
        lab.node_exec(["nft", "delete", *table.split()])


def netns_names():
    return set(run(["ip", "netns", "list"]).stdout.split())


@pytest.mark.parametrize("proto", ["tcp", "udp"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("src", ["pod-a", "client", "node"])
def test_direct_connectivity(lab, src, family, proto):
    dst = lab.pods["pod-b"]
    reply = lab.request(src, getattr(dst, family), 8080, proto=proto)
    # Nothing is NATed yet: the pod sees the sender's own address (the node uses its cbr0 one).
    seen = {"ip4": POD_GATEWAY4, "ip6": POD_GATEWAY6}[family] if src == "node" \
        else getattr(lab.hosts[src], family)
    assert reply == {"pod": "pod-b", "peer": seen, "port": 8080}


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_closed_port_is_refused_at_once(lab, proto):
    with pytest.raises(Rejected) as err:
        lab.request("client", lab.pods["pod-c"].ip6, 9, proto=proto)
    assert err.value.result.error == "refused"
    assert err.value.result.seconds < 0.5


def test_unhandled_service_ip_times_out(lab):
    # Routed into the svc0 sink: no answer, no ICMP within the timeout.
    with pytest.raises(Timeout):
        lab.request("client", "10.96.0.99", 80, timeout=0.3)


DNAT = """
table ip labtest {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 10.96.0.10 meta l4proto { tcp, udp } th dport 80 dnat to numgen random mod 2 map { 0 : 10.244.1.2, 1 : 10.244.1.3 } : 8080
    }
    chain output {
        type nat hook output priority -100; policy accept;
        ip daddr 10.96.0.10 meta l4proto { tcp, udp } th dport 80 dnat to numgen random mod 2 map { 0 : 10.244.1.2, 1 : 10.244.1.3 } : 8080
    }
}
"""


@pytest.mark.parametrize("proto", ["tcp", "udp"])
@pytest.mark.parametrize("src", ["client", "pod-c", "node"])
def test_service_dnat_spreads_over_both_pods(lab, ruleset, src, proto):
    ruleset(DNAT)
    results = lab.requests(src, "10.96.0.10", 80, 100, proto=proto, timeout=0.5)
    assert [r.error for r in results if not r.ok] == []
    seen = pods_seen(results)
    assert set(seen) == {"pod-a", "pod-b"} and min(seen.values()) >= 20, seen
    # DNAT only: the backend sees the real source (the node's cbr0 address for the node itself).
    expected_peer = POD_GATEWAY4 if src == "node" else lab.hosts[src].ip4
    assert {r.reply["peer"] for r in results} == {expected_peer}


def test_pod_to_service_needs_br_netfilter(lab, ruleset):
    # pod-c -> ClusterIP -> pod-a/pod-b: the reply is bridged, so only br_netfilter un-DNATs it.
    ruleset(DNAT)
    lab.node_exec(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0"])
    try:
        with pytest.raises(Timeout):
            lab.request("pod-c", "10.96.0.10", 80, timeout=0.3)
    finally:
        lab.node_exec(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"])
    assert lab.request("pod-c", "10.96.0.10", 80)["pod"] in ("pod-a", "pod-b")


HAIRPIN = """
table inet labhairpin {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 10.96.0.20 tcp dport 80 dnat ip to 10.244.1.2:8080
        ip6 daddr fd00:10:96::20 tcp dport 80 dnat ip6 to [fd00:244:1::2]:8080
    }
}
"""
MASQUERADE = """
table inet labmasq {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.244.1.2 ip daddr 10.244.1.2 masquerade
        ip6 saddr fd00:244:1::2 ip6 daddr fd00:244:1::2 masquerade
    }
}
"""


@pytest.mark.parametrize("family, vip, gateway", [("ip4", "10.96.0.20", POD_GATEWAY4),
                                                  ("ip6", "fd00:10:96::20", POD_GATEWAY6)])
def test_hairpin_needs_masquerade_and_hairpin_port(lab, ruleset, family, vip, gateway):
    ruleset(HAIRPIN)
    # Another pod reaches pod-a through the service without any masquerade.
    assert lab.request("pod-b", vip, 80) == {
        "pod": "pod-a", "peer": getattr(lab.pods["pod-b"], family), "port": 8080}
    # pod-a -> service -> pod-a: without masquerade pod-a drops a packet "from itself".
    with pytest.raises(Timeout):
        lab.request("pod-a", vip, 80, timeout=0.3)
    ruleset(MASQUERADE)
    assert lab.request("pod-a", vip, 80) == {"pod": "pod-a", "peer": gateway, "port": 8080}
    # And the bridge port must be in hairpin mode (pod-a is the first pod: node port vp0).
    lab.node_exec(["ip", "link", "set", "dev", "vp0", "type", "bridge_slave", "hairpin", "off"])
    try:
        with pytest.raises(Timeout):
            lab.request("pod-a", vip, 80, timeout=0.3)
    finally:
        lab.node_exec(["ip", "link", "set", "dev", "vp0", "type", "bridge_slave", "hairpin", "on"])


def test_teardown_removes_everything():
    with Lab(pods=["solo"], clients=[]) as small:
        server = small._servers["solo"]
        names = {h.netns for h in small.hosts.values()}
        assert names <= netns_names()
    assert server.poll() is not None
    assert not names & netns_names()


def test_failed_build_is_torn_down():
    bad = Lab(pods=["bad"], clients=[], tcp_ports=[70000])
    with pytest.raises(LabError, match="did not start"):
        with bad:
            pass
    assert not {h.netns for h in bad.hosts.values()} & netns_names()


def test_cleanup_stale_removes_dead_owners_only():
    # A prefix of its own, so that parallel runs' cleanups leave these namespaces alone.
    prefix = f"{PREFIX}test{os.getpid()}"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, alive = f"{prefix}-{dead.pid}-dead00-node", f"{prefix}-{os.getpid()}-live00-node"
    for name in (stale, alive):
        run(["ip", "netns", "add", name])
    try:
        assert cleanup_stale(prefix) == [stale]
        names = netns_names()
        assert stale not in names and alive in names
    finally:
        for name in (stale, alive):
            run(["ip", "netns", "delete", name], check=False)
