"""svcctl.dns: one test (or a few) per rule of the Kubernetes DNS spec v1.1.0 (its section numbers
in the names), and svcctl's choices where the spec leaves room (CoreDNS's, see docs/dns.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import inventory_of

from svcctl.dns import dns_settings
from svcctl.dns.names import cluster_domain, endpoint_label, reverse_name, zone_name
from svcctl.dns.records import cluster_records
from svcctl.dns.zone import build_zone, content_serial
from svcctl.options import Options
from svcctl.problems import InvalidInput
from svcctl.resolve import resolve

D = "cluster.local"


def dump(*docs: dict[str, Any]) -> str:
    return "\n---\n".join(json.dumps(d) for d in docs) + "\n"


def service(name: str, namespace: str = "default", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    spec = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}] if ports is None else ports, **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def headless(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return service(name, namespace, clusterIP="None", selector={"app": name}, **spec)


def pod(name: str, ips: list[str], app: str, ready: bool = True, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c"}], **spec},
        "status": {"phase": "Running", "podIPs": [{"ip": ip} for ip in ips],
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def cluster_of(write, *docs: dict[str, Any], **given: Any):
    settings = dns_settings({k.replace("_", "-"): v for k, v in given.items()})
    inventory = inventory_of(write(dump(*docs)))
    return cluster_records(inventory, resolve(inventory, Options(node_name="n")), settings), settings


def records_of(write, *docs: dict[str, Any], **given: Any) -> set[tuple[str, str, str]]:
    """(name, type, data) of every forward record and every PTR, without SOA and NS."""
    cluster, _ = cluster_of(write, *docs, **given)
    return {(r.name, r.type, r.data.text()) for r in (*cluster.forward, *cluster.reverse)}


def under(records: set[tuple[str, str, str]], name: str) -> set[tuple[str, str]]:
    return {(t, d) for n, t, d in records if n == name}


# ---- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, label",
    [
        ("10.244.1.5", "10-244-1-5"),
        ("fd00:10:244::5", "fd00-10-244--5"),
        ("fd00:10:244::", "fd00-10-244--0"),  # CoreDNS pads a trailing "-"
        ("::ffff:10.0.0.1", "0--ffff-10.0.0.1".replace(".", "-")),  # and svcctl a leading one
    ],
)
def test_generated_endpoint_labels(address, label):
    assert endpoint_label(address) == label


def test_reverse_names_spec_2_3_3():
    assert reverse_name("10.3.0.1") == "1.0.3.10.in-addr.arpa."
    # the spec's own example: every nibble of the full address, reversed
    assert reverse_name("2001:db8::1") == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."


@pytest.mark.parametrize("given, domain", [("cluster.local", D), ("Cluster.Local.", D), ("k8s.example.com", "k8s.example.com")])
def test_cluster_domain(given, domain):
    assert cluster_domain(given) == domain


@pytest.mark.parametrize("given", ["", ".", "a..b", "-a.b", "a_b.local", "a b", "x" * 64 + ".local", ("a" * 60 + ".") * 4 + "x"])
def test_bad_cluster_domains(given):
    with pytest.raises(ValueError):
        cluster_domain(given)


@pytest.mark.parametrize(
    "given, name, reverse",
    [
        ("cluster.local", "cluster.local.", False),
        ("in-addr.arpa", "in-addr.arpa.", True),
        ("10.in-addr.arpa.", "10.in-addr.arpa.", True),
        ("96.10.IN-ADDR.ARPA", "96.10.in-addr.arpa.", True),
        ("ip6.arpa", "ip6.arpa.", True),
        ("D.F.ip6.arpa", "d.f.ip6.arpa.", True),
    ],
)
def test_zone_names(given, name, reverse):
    zone = zone_name(given, D)
    assert (zone.name, zone.reverse) == (name, reverse)


@pytest.mark.parametrize("given", ["example.com", "arpa", "256.in-addr.arpa", "010.in-addr.arpa", "1.2.3.4.5.in-addr.arpa", "ab.ip6.arpa", "g.ip6.arpa", "svc.cluster.local"])
def test_bad_zone_names(given):
    with pytest.raises(ValueError, match="neither the cluster domain"):
        zone_name(given, D)


# ---- 2.2 schema version -----------------------------------------------------------------------


def test_2_2_dns_version(write):
    records = records_of(write, service("web", clusterIP="10.96.0.10"))
    assert under(records, "dns-version.cluster.local.") == {("TXT", '"1.1.0"')}
    cluster, _ = cluster_of(write, service("web", clusterIP="10.96.0.10"))
    (txt,) = [r for r in cluster.forward if r.type == "TXT"]
    assert txt.ttl == 28800  # CoreDNS's (and the spec example's) TTL for it


# ---- 2.3 Services with a cluster IP -----------------------------------------------------------


def test_2_3_1_a_and_aaaa_for_every_cluster_ip(write):
    dual = service("web", "shop", ipFamilyPolicy="RequireDualStack", clusterIPs=["10.96.0.10", "fd00:10:96::a"])
    records = records_of(write, dual, service("v6", "shop", ipFamilies=["IPv6"], clusterIPs=["fd00:10:96::b"]))
    assert under(records, "web.shop.svc.cluster.local.") == {("A", "10.96.0.10"), ("AAAA", "fd00:10:96::a")}
    assert under(records, "v6.shop.svc.cluster.local.") == {("AAAA", "fd00:10:96::b")}


def test_2_3_1_allocated_cluster_ips_and_every_type_with_one(write):
    # (single-stack IPv4: the first default service CIDR)
    records = records_of(write, service("np", type="NodePort"), service("lb", type="LoadBalancer"))
    for name in ("np", "lb"):
        assert {t for t, _ in under(records, f"{name}.default.svc.cluster.local.")} == {"A"}


def test_2_3_2_srv_per_named_port_to_the_service_port(write):
    ports = [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "sig", "port": 3868, "protocol": "SCTP"},
    ]
    records = records_of(write, service("web", clusterIP="10.96.0.10", ports=ports))
    base = "web.default.svc.cluster.local."
    assert under(records, f"_http._tcp.{base}") == {("SRV", f"0 100 80 {base}")}  # the Service's port, not 8080
    assert under(records, f"_dns._udp.{base}") == {("SRV", f"0 100 53 {base}")}
    assert under(records, f"_sig._sctp.{base}") == {("SRV", f"0 100 3868 {base}")}


def test_2_3_2_unnamed_ports_have_no_srv(write):
    records = records_of(write, service("web", clusterIP="10.96.0.10", ports=[{"port": 80}]))
    assert {t for _, t, _ in records} == {"A", "TXT", "PTR"}


def test_2_3_3_ptr_for_every_cluster_ip(write):
    dual = service("web", "shop", ipFamilyPolicy="RequireDualStack", clusterIPs=["10.96.0.10", "2001:db8::1"])
    records = records_of(write, dual)
    assert under(records, "10.0.96.10.in-addr.arpa.") == {("PTR", "web.shop.svc.cluster.local.")}
    assert under(records, reverse_name("2001:db8::1")) == {("PTR", "web.shop.svc.cluster.local.")}


def test_cluster_ip_services_are_named_whatever_their_endpoints(write):
    # CoreDNS answers a ClusterIP Service's name with or without endpoints.
    records = records_of(write, service("web", clusterIP="10.96.0.10", selector={"app": "none"}))
    assert under(records, "web.default.svc.cluster.local.") == {("A", "10.96.0.10")}


# ---- 2.4 headless Services ---------------------------------------------------------------------

BASE = "db.default.svc.cluster.local."


def test_2_4_1_ready_endpoints_at_the_service_name_and_by_hostname(write):
    records = records_of(
        write,
        headless("db"),
        pod("db-0", ["10.244.1.5", "fd00:10:244:1::5"], "db", hostname="db-0", subdomain="db"),
        pod("db-1", ["10.244.2.5"], "db"),  # no hostname: a generated label
    )
    assert under(records, BASE) == {("A", "10.244.1.5"), ("AAAA", "fd00:10:244:1::5"), ("A", "10.244.2.5")}
    assert under(records, f"db-0.{BASE}") == {("A", "10.244.1.5"), ("AAAA", "fd00:10:244:1::5")}
    assert under(records, f"10-244-2-5.{BASE}") == {("A", "10.244.2.5")}


def test_2_4_1_not_ready_endpoints_get_no_name(write):
    records = records_of(
        write,
        headless("db"),
        pod("db-0", ["10.244.1.5"], "db", hostname="db-0", subdomain="db"),
        pod("db-1", ["10.244.2.5"], "db", ready=False, hostname="db-1", subdomain="db"),
    )
    assert under(records, BASE) == {("A", "10.244.1.5")}
    assert under(records, f"db-1.{BASE}") == set()
    assert not any(n.startswith("5.2.244.10") for n, _, _ in records)


def test_2_4_1_no_ready_endpoint_no_name_at_all(write):
    records = records_of(write, headless("db"), pod("db-0", ["10.244.1.5"], "db", ready=False))
    assert not any(n.endswith(BASE) for n, _, _ in records)  # NXDOMAIN, as the spec asks


def test_publish_not_ready_addresses_names_every_endpoint(write):
    records = records_of(
        write,
        headless("db", publishNotReadyAddresses=True),
        pod("db-0", ["10.244.1.5"], "db", ready=False, hostname="db-0", subdomain="db"),
    )
    assert under(records, BASE) == {("A", "10.244.1.5")}
    assert under(records, f"db-0.{BASE}") == {("A", "10.244.1.5")}


def test_pod_hostname_needs_the_service_as_subdomain(write):
    # The endpoints controller's rule: spec.hostname counts only with spec.subdomain naming the Service.
    records = records_of(
        write,
        headless("db"),
        pod("db-0", ["10.244.1.5"], "db", hostname="db-0", subdomain="other"),
        pod("db-1", ["10.244.2.5"], "db", hostname="db-1"),
    )
    assert {n for n, t, _ in records if t == "A" and n.endswith(BASE) and n != BASE} == {f"10-244-1-5.{BASE}", f"10-244-2-5.{BASE}"}


def test_hostnames_from_endpoint_slices_and_endpoints(write):
    sliced = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-x", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.244.1.5"], "hostname": "db-0"},
            {"addresses": ["10.244.2.5"], "hostname": "db-1", "conditions": {"ready": False}},
            {"addresses": ["10.244.3.5"]},
        ],
        "ports": [{"name": "http", "port": 8080}],
    }
    records = records_of(write, headless("db"), sliced)
    assert under(records, f"db-0.{BASE}") == {("A", "10.244.1.5")}
    assert under(records, f"db-1.{BASE}") == set()
    assert under(records, f"10-244-3-5.{BASE}") == {("A", "10.244.3.5")}

    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
        "subsets": [{
            "addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.3.5"}],
            "notReadyAddresses": [{"ip": "10.244.2.5", "hostname": "db-1"}],
            "ports": [{"name": "http", "port": 8080}],
        }],
    }
    assert records_of(write, headless("db"), endpoints) == records


def test_a_headless_service_without_ports_is_named_from_every_source(write):
    """Ports are optional for a headless Service; the controllers still write its endpoints
    (slices and subsets without ports), and CoreDNS answers their ready addresses."""
    expected = {("A", "10.244.1.5"), ("A", "10.244.3.5")}
    sliced = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-x", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.5"], "hostname": "db-0"}, {"addresses": ["10.244.3.5"]},
                      {"addresses": ["10.244.2.5"], "conditions": {"ready": False}}],
    }
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
        "subsets": [{"addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.3.5"}],
                     "notReadyAddresses": [{"ip": "10.244.2.5"}]}],
    }
    pods = [pod("db-0", ["10.244.1.5"], "db", hostname="db-0", subdomain="db"), pod("db-1", ["10.244.3.5"], "db"),
            pod("db-2", ["10.244.2.5"], "db", ready=False)]
    for source in ([sliced], [endpoints], pods):
        records = records_of(write, headless("db", ports=[]), *source)
        assert under(records, BASE) == expected, source
        assert under(records, f"db-0.{BASE}") == {("A", "10.244.1.5")}
        assert not any(t == "SRV" for _, t, _ in records)


def test_headless_names_hold_endpoints_that_match_no_service_port(write):
    """A slice port of another name still names its endpoints (CoreDNS reads addresses only);
    only the SRV records follow the Service's ports."""
    sliced = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-x", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.1.5"]}], "ports": [{"name": "other", "port": 9}],
    }
    records = records_of(write, headless("db"), sliced)
    assert under(records, BASE) == {("A", "10.244.1.5")}
    assert under(records, f"_http._tcp.{BASE}") == set()


def test_2_4_2_srv_per_ready_endpoint_and_named_port_with_the_endpoint_port(write):
    ports = [{"name": "pg", "port": 5432, "targetPort": 15432}]
    records = records_of(
        write,
        headless("db", ports=ports),
        pod("db-0", ["10.244.1.5", "fd00::5"], "db", hostname="db-0", subdomain="db"),
        pod("db-1", ["10.244.2.5"], "db"),
        pod("db-2", ["10.244.3.5"], "db", ready=False),
    )
    # db-0's two addresses share its name: one target; equal weights of 100 / 2
    assert under(records, f"_pg._tcp.{BASE}") == {("SRV", f"0 50 15432 db-0.{BASE}"), ("SRV", f"0 50 15432 10-244-2-5.{BASE}")}


def test_srv_weights_are_an_equal_share_at_least_1(write):
    many = [pod(f"db-{i}", [f"10.244.0.{i + 1}"], "db") for i in range(150)]
    records = records_of(write, headless("db"), *many)
    weights = {d.split()[1] for _, t, d in records if t == "SRV"}
    assert weights == {"1"}


def test_2_4_3_ptr_for_every_ready_endpoint(write):
    records = records_of(
        write,
        headless("db"),
        pod("db-0", ["10.244.1.5", "fd00::5"], "db", hostname="db-0", subdomain="db"),
        pod("db-1", ["10.244.2.5"], "db"),
        pod("db-2", ["10.244.3.5"], "db", ready=False),
    )
    assert under(records, "5.1.244.10.in-addr.arpa.") == {("PTR", f"db-0.{BASE}")}
    assert under(records, reverse_name("fd00::5")) == {("PTR", f"db-0.{BASE}")}
    assert under(records, "5.2.244.10.in-addr.arpa.") == {("PTR", f"10-244-2-5.{BASE}")}
    assert under(records, "5.3.244.10.in-addr.arpa.") == set()


def test_a_cluster_ip_ptr_wins_over_an_endpoint_with_that_address(write):
    # CoreDNS looks up cluster IPs first and answers with the Service alone.
    records = records_of(write, service("web", clusterIP="10.96.0.10", selector={"app": "x"}), headless("db"), pod("db-0", ["10.96.0.10"], "db"))
    assert under(records, "10.0.96.10.in-addr.arpa.") == {("PTR", "web.default.svc.cluster.local.")}
    assert under(records, f"10-96-0-10.{BASE}") == {("A", "10.96.0.10")}


def test_shared_hostnames_are_a_warning(write):
    cluster, _ = cluster_of(
        write,
        headless("db"),
        pod("db-0", ["10.244.1.5", "fd00::5"], "db", hostname="db-0", subdomain="db"),  # one Pod, two families: fine
        pod("db-1", ["10.244.2.5"], "db", hostname="x", subdomain="db"),
        pod("db-2", ["10.244.3.5"], "db", hostname="x", subdomain="db"),
    )
    assert cluster.warnings == (
        f"headless Service default/db: 2 endpoints share the name x.{BASE} (10.244.2.5, 10.244.3.5): it answers with all of them",
    )
    assert {r.data.text() for r in cluster.forward if r.name == f"x.{BASE}"} == {"10.244.2.5", "10.244.3.5"}


# ---- 2.5 ExternalName ----------------------------------------------------------------------------


@pytest.mark.parametrize("external", ["my.database.example.com", "my.database.example.com."])
def test_2_5_cname_to_the_absolute_external_name(write, external):
    records = records_of(write, service("my-service", "prod", ports=[], type="ExternalName", externalName=external))
    assert under(records, "my-service.prod.svc.cluster.local.") == {("CNAME", "my.database.example.com.")}
    assert not any(t == "SRV" for _, t, _ in records)


def test_an_ip_address_as_external_name_is_a_warning_and_no_record(write):
    cluster, _ = cluster_of(write, service("ip", ports=[], type="ExternalName", externalName="192.0.2.1"))
    assert not any(r.name.startswith("ip.") for r in cluster.forward)
    assert cluster.warnings == ("ExternalName Service default/ip: externalName 192.0.2.1 is an IP address, not a DNS name: no record",)


def test_an_external_name_label_longer_than_63_is_a_problem(write):
    name = "a" * 64 + ".example.com"
    with pytest.raises(InvalidInput) as err:
        cluster_of(write, service("x", ports=[], type="ExternalName", externalName=name))
    (line,) = err.value.lines()
    assert line.endswith(f': Service default/x: spec.externalName: Invalid value: "{name}": '
                         "a DNS label has at most 63 characters (RFC 1035 2.3.4): no CNAME can point to it")
    assert ".yaml:1: " in line  # the file and the line of the field (one JSON document per line here)


# ---- limits ---------------------------------------------------------------------------------------


def test_names_longer_than_253_are_problems_one_per_service(write):
    domain = ".".join(["d" * 60] * 2)  # 121 characters: fine alone
    long = "s" * 63
    with pytest.raises(InvalidInput) as err:
        cluster_of(write, headless(long, "n" * 63), pod("p", ["10.244.1.5"], long, namespace="n" * 63),
                   service("short", clusterIP="10.96.0.10"), cluster_domain=domain)
    (line,) = err.value.lines()
    assert f"Service {'n' * 63}/{long}: metadata.name: Invalid value: " in line
    assert "a DNS name has at most 253 characters (RFC 1035 2.3.4)" in line


# ---- the name server and the SOA -------------------------------------------------------------------


def test_ns_and_its_address_from_kube_dns(write):
    kube_dns = service("kube-dns", "kube-system", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}], clusterIP="10.96.0.10")
    cluster, settings = cluster_of(write, kube_dns)
    zone = build_zone(cluster, settings.forward_zone, settings)
    by_type = {(r.name, r.type): r.data.text() for r in zone.records}
    assert by_type[("cluster.local.", "NS")] == "ns.dns.cluster.local."
    assert by_type[("ns.dns.cluster.local.", "A")] == "10.96.0.10"
    cluster, _ = cluster_of(write, service("web", clusterIP="10.96.0.20"))
    assert [r.data.text() for r in cluster.forward if r.name == "ns.dns.cluster.local."] == ["127.0.0.1"]


def test_soa_as_coredns_with_a_serial_from_the_content(write):
    cluster, settings = cluster_of(write, service("web", clusterIP="10.96.0.10"), ttl=30)
    soa, *body = build_zone(cluster, settings.forward_zone, settings).records
    assert (soa.name, soa.type, soa.ttl) == ("cluster.local.", "SOA", 30)
    assert soa.data.text() == f"ns.dns.cluster.local. hostmaster.cluster.local. {content_serial(body)} 7200 1800 86400 30"
    again, _ = cluster_of(write, service("web", clusterIP="10.96.0.10"), ttl=30)
    assert build_zone(again, settings.forward_zone, settings).records[0] == soa
    changed, _ = cluster_of(write, service("web", clusterIP="10.96.0.11"), ttl=30)
    assert build_zone(changed, settings.forward_zone, settings).records[0].data.serial != soa.data.serial
    assert all(r.ttl == 30 for r in body if r.type != "TXT")


def test_serial_setting_and_soa_ttl_cap(write):
    cluster, settings = cluster_of(write, service("web", clusterIP="10.96.0.10"), ttl=3600, serial=7)
    soa = build_zone(cluster, settings.forward_zone, settings).records[0]
    assert soa.ttl == 300 and soa.data.serial == 7 and soa.data.minimum == 3600


def test_reverse_zone_holds_the_ptrs_inside_it(write):
    docs = (service("a", clusterIP="10.96.0.10"), service("b", clusterIP="10.97.0.10"), service("c", ipFamilies=["IPv6"], clusterIPs=["fd00::c"]))
    cluster, settings = cluster_of(write, *docs, zone="96.10.in-addr.arpa")
    zone = build_zone(cluster, settings.zone, settings)
    assert [(r.name, r.type) for r in zone.records] == [
        ("96.10.in-addr.arpa.", "SOA"), ("96.10.in-addr.arpa.", "NS"), ("10.0.96.10.in-addr.arpa.", "PTR"),
    ]
    assert zone.records[1].data.text() == "ns.dns.cluster.local."  # out of the zone: no address needed
    v6 = build_zone(cluster, zone_name("d.f.ip6.arpa", D), settings)
    assert [r.data.text() for r in v6.records if r.type == "PTR"] == ["c.default.svc.cluster.local."]


def test_cluster_domain_setting(write):
    records = records_of(write, service("web", clusterIP="10.96.0.10"), cluster_domain="k8s.example.")
    assert under(records, "web.default.svc.k8s.example.") == {("A", "10.96.0.10")}
    assert under(records, "10.0.96.10.in-addr.arpa.") == {("PTR", "web.default.svc.k8s.example.")}


@pytest.mark.parametrize(
    "given, message",
    [
        ({"ttl": 3601}, 'command line: ttl: "3601" is not a TTL in seconds (CoreDNS\'s range): a whole number from 0 to 3600'),
        ({"ttl": -1}, 'command line: ttl: "-1" is not a TTL in seconds (CoreDNS\'s range): a whole number from 0 to 3600'),
        ({"serial": 2**32}, f'command line: serial: "{2**32}" is not an SOA serial: a whole number from 0 to {2**32 - 1}'),
        ({"cluster-domain": "bad_domain"}, 'command line: cluster-domain: "bad_domain" is not a DNS domain name (labels of a-z, 0-9 and "-", at most 63 characters each)'),
    ],
)
def test_bad_settings(given, message):
    with pytest.raises(InvalidInput) as err:
        dns_settings(given)
    assert err.value.lines() == [message]


def test_2_4_2_unnamed_ports_have_no_srv_headless_either(write):
    records = records_of(write, headless("db", ports=[{"port": 5432}]), pod("db-0", ["10.244.1.5"], "db", hostname="db-0", subdomain="db"))
    assert {t for n, t, _ in records if n.endswith(BASE)} == {"A"}
