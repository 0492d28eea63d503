"""Validation rules, as the API server applies and words them: valid and invalid cases."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from conftest import problems_of

from svcctl.load import Source, parse_source
from svcctl.problems import InvalidInput, format_path
from svcctl.validate import NodePortRange, validate

LONG = "a" * 64


def check(*docs: dict[str, Any], node_ports: NodePortRange = NodePortRange()) -> list[str]:
    """Validate the documents; every problem as 'KIND ns/name: path: message' (file order)."""
    objects, problems = parse_source(Source("m.yaml", yaml.safe_dump_all(docs, sort_keys=False), False))
    assert problems == []
    try:
        validate(objects, node_ports)
    except InvalidInput as err:
        return [f"{p.kind} {p.ref}: {format_path(p.path)}: {p.message}" for p in err.problems]
    return []


def service(spec: dict[str, Any] | None = None, name: str = "s", namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if spec is None:
        spec = {"ports": [{"port": 80}]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec, **extra}


def svc_problems(spec: dict[str, Any], **kw: Any) -> list[str]:
    """Problems of one Service, without the 'Service default/s: ' prefix."""
    prefix = "Service default/s: "
    out = check(service(spec, **kw))
    assert all(p.startswith(prefix) for p in out), out
    return [p[len(prefix):] for p in out]


P80 = [{"port": 80}]

# ---- names, labels, selectors --------------------------------------------------------------

DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("web", []),
        ("a-b-1", []),
        ("a" * 63, []),
        ("My-svc", [f'metadata.name: Invalid value: "My-svc": {DNS1035}']),
        ("1abc", [f'metadata.name: Invalid value: "1abc": {DNS1035}']),
        ("a.b", [f'metadata.name: Invalid value: "a.b": {DNS1035}']),
        ("web-", [f'metadata.name: Invalid value: "web-": {DNS1035}']),
        (LONG, [f'metadata.name: Invalid value: "{LONG}": must be no more than 63 characters']),
        ("", ["metadata.name: Required value: name or generateName is required"]),
    ],
)
def test_service_name_is_a_dns1035_label(name, expected):
    out = check(service(name=name))
    assert [p.split(": ", 1)[1] for p in out] == expected


@pytest.mark.parametrize(
    "namespace, expected",
    [
        ("kube-system", []),
        ("0day", []),  # a DNS-1123 label may start with a digit
        ("Prod", [f'metadata.namespace: Invalid value: "Prod": {DNS1123_LABEL}']),
        ("a.b", [f'metadata.namespace: Invalid value: "a.b": {DNS1123_LABEL}']),
    ],
)
def test_namespace_is_a_dns1123_label(namespace, expected):
    out = check(service(namespace=namespace))
    assert [p.split(": ", 1)[1] for p in out] == expected


@pytest.mark.parametrize(
    "kind, api_version, name, ok",
    [
        ("Endpoints", "v1", "a.b-1", True),
        ("Endpoints", "v1", "1abc", True),
        ("Endpoints", "v1", "A", False),
        ("EndpointSlice", "discovery.k8s.io/v1", "web-abc12.x", True),
        ("EndpointSlice", "discovery.k8s.io/v1", "web_1", False),
    ],
)
def test_endpoints_and_slice_names_are_dns_subdomains(kind, api_version, name, ok):
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    if kind == "EndpointSlice":
        doc["addressType"] = "IPv4"
    expected = [] if ok else [f'{kind} default/{name}: metadata.name: Invalid value: "{name}": {DNS1123_SUBDOMAIN}']
    assert check(doc) == expected


LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


@pytest.mark.parametrize(
    "labels, expected",
    [
        ({"app.kubernetes.io/name": "web", "tier": "", "x_y.z": "A-1_b.c"}, []),
        ({"tier": "-front"}, [f'metadata.labels[tier]: Invalid value: "-front": {LABEL_VALUE}']),
        ({"tier": LONG}, [f'metadata.labels[tier]: Invalid value: "{LONG}": must be no more than 63 characters']),
        (
            {"bad key": "x"},
            [
                'metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters, '
                "'-', '_' or '.', and must start and end with an alphanumeric character"
            ],
        ),
        (
            {"Example.com/x": "y"},
            [f'metadata.labels: Invalid value: "Example.com/x": prefix part {DNS1123_SUBDOMAIN}'],
        ),
    ],
)
def test_labels(labels, expected):
    doc = service()
    doc["metadata"]["labels"] = labels
    assert [p.split(": ", 1)[1] for p in check(doc)] == expected


def test_selector_labels_are_checked():
    assert svc_problems({"ports": P80, "selector": {"app": "web", "bad/key/x": "v", "ok": "no good"}}) == [
        "spec.selector: Invalid value: \"bad/key/x\": a qualified name must consist of alphanumeric characters, "
        "'-', '_' or '.', with an optional DNS subdomain prefix and '/'",
        f'spec.selector[ok]: Invalid value: "no good": {LABEL_VALUE}',
    ]


# ---- ports ---------------------------------------------------------------------------------

PORT_RANGE = "must be between 1 and 65535, inclusive"


def test_ports_required_except_headless_and_external_name():
    assert svc_problems({}) == ["spec.ports: Required value"]
    assert svc_problems({"type": "NodePort"}) == ["spec.ports: Required value"]
    assert svc_problems({"clusterIP": "None"}) == []
    assert svc_problems({"type": "ExternalName", "externalName": "db.example.com"}) == []


@pytest.mark.parametrize("port, ok", [(1, True), (65535, True), (0, False), (65536, False), (-1, False)])
def test_port_number_range(port, ok):
    expected = [] if ok else [
        f"spec.ports[0].targetPort: Invalid value: {port}: {PORT_RANGE}",  # defaulted from port
        f"spec.ports[0].port: Invalid value: {port}: {PORT_RANGE}",
    ]
    assert sorted(svc_problems({"ports": [{"port": port}]})) == sorted(expected)


def test_port_names():
    assert svc_problems({"ports": [{"port": 80}, {"port": 81}]}) == [
        "spec.ports[0].name: Required value",
        "spec.ports[1].name: Required value",
    ]
    assert svc_problems({"ports": [{"name": "http", "port": 80}, {"port": 81}]}) == ["spec.ports[1].name: Required value"]
    assert svc_problems({"ports": [{"name": "HTTP", "port": 80}]}) == [
        f'spec.ports[0].name: Invalid value: "HTTP": {DNS1123_LABEL}'
    ]
    assert svc_problems({"ports": [{"name": "web", "port": 80}, {"name": "web", "port": 81}]}) == [
        'spec.ports[1].name: Duplicate value: "web"'
    ]
    # a single port may be nameless, and names may be long-ish DNS labels (not IANA names)
    assert svc_problems({"ports": [{"name": "a-very-long-port-name-1", "port": 80}]}) == []


def test_protocols():
    assert svc_problems({"ports": [{"port": 80, "protocol": "ICMP"}]}) == [
        'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'
    ]
    ok = [{"name": p.lower(), "port": 53, "protocol": p} for p in ("TCP", "UDP", "SCTP")]
    assert svc_problems({"ports": ok}) == []


def test_duplicate_protocol_and_port():
    ports = [{"name": "a", "port": 80}, {"name": "b", "port": 80, "targetPort": 8080}]
    assert svc_problems({"ports": ports}) == ["spec.ports[1]: Duplicate value: {port: 80, protocol: TCP}"]


@pytest.mark.parametrize(
    "target, errors",
    [
        ("http", []),
        ("a" * 15, []),
        ("h2c-web", []),
        ("9to5", []),
        ("a" * 16, ["must be no more than 15 characters"]),
        ("HTTP", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", "must contain at least one letter (a-z)"]),
        ("web_1", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
        ("8080x", []),
        ("123", ["must contain at least one letter (a-z)"]),
        ("a--b", ["must not contain consecutive hyphens"]),
        ("-ab", ["must not begin or end with a hyphen"]),
        ("ab-", ["must not begin or end with a hyphen"]),
        ("80", ["must contain at least one letter (a-z)"]),  # a string is a name, even when it looks like a number
    ],
)
def test_named_target_port_is_an_iana_service_name(target, errors):
    out = svc_problems({"ports": [{"port": 80, "targetPort": target}]})
    assert out == [f'spec.ports[0].targetPort: Invalid value: "{target}": {e}' for e in errors]


@pytest.mark.parametrize("target, ok", [(1, True), (65535, True), (65536, False), (-5, False)])
def test_numeric_target_port(target, ok):
    out = svc_problems({"ports": [{"port": 80, "targetPort": target}]})
    assert out == ([] if ok else [f"spec.ports[0].targetPort: Invalid value: {target}: {PORT_RANGE}"])


# ---- cluster IPs and families --------------------------------------------------------------

BAD_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"clusterIP": "10.96.0.10"}, []),
        ({"clusterIP": "fd00::10"}, []),
        ({"clusterIP": "None"}, []),
        ({"clusterIP": "10.0.0.300"}, [f'spec.clusterIPs[0]: Invalid value: "10.0.0.300": {BAD_IP}']),
        ({"clusterIP": "10.0.0.1/32"}, [f'spec.clusterIPs[0]: Invalid value: "10.0.0.1/32": {BAD_IP}']),
        (
            {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.2"]},
            ['spec.clusterIPs[0]: Invalid value: "10.0.0.2": must be equal to clusterIP'],
        ),
        (
            {"clusterIPs": ["None", "10.0.0.1"], "ipFamilyPolicy": "PreferDualStack"},
            ["spec.clusterIPs[0]: Invalid value: \"None\": 'None' must be the first and only value"],
        ),
        (
            {"clusterIPs": ["10.0.0.1", "10.0.0.2"], "ipFamilyPolicy": "RequireDualStack"},
            ['spec.clusterIPs: Invalid value: "10.0.0.2": may specify no more than one IP for each IP family'],
        ),
        (
            {"clusterIP": "10.0.0.1", "ipFamilies": ["IPv6"]},
            ['spec.clusterIPs[0]: Invalid value: "10.0.0.1": expected an IPv6 value as indicated by `ipFamilies[0]`'],
        ),
        (
            {"clusterIPs": ["10.0.0.1", "fd00::1"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"},
            [],
        ),
        ({"clusterIPs": ["fd00::1", "10.0.0.1"], "ipFamilyPolicy": "PreferDualStack"}, []),
        ({"ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "PreferDualStack"}, []),
        (
            # without ipFamilyPolicy the API server assumes SingleStack (since 1.23)
            {"clusterIPs": ["10.0.0.1", "fd00::1"]},
            [
                'spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or '
                "'PreferDualStack' when multiple cluster IPs are specified"
            ],
        ),
        (
            {"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "SingleStack"},
            [
                'spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or '
                "'PreferDualStack' when multiple IP families are specified"
            ],
        ),
        ({"ipFamilies": ["IPv4", "IPv4"], "ipFamilyPolicy": "PreferDualStack"}, ['spec.ipFamilies[1]: Duplicate value: "IPv4"']),
        (
            {"ipFamilies": ["IPv5"]},
            ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'],
        ),
    ],
)
def test_cluster_ips(spec, expected):
    assert svc_problems({"ports": P80, **spec}) == expected


def test_headless_with_selector_and_no_policy_single_family():
    assert svc_problems({"clusterIP": "None", "selector": {"app": "x"}}) == []


def test_headless_selectorless_service_defaults_to_dual_stack():
    # initIPFamilyFields: a headless Service without selector and without ipFamilyPolicy is
    # RequireDualStack, so two ipFamilies are fine.
    assert svc_problems({"clusterIP": "None", "ipFamilies": ["IPv4", "IPv6"]}) == []


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_headless_not_allowed_for_node_port_and_load_balancer(kind):
    assert svc_problems({"type": kind, "clusterIP": "None", "ports": P80}) == [
        f"spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for {kind} services"
    ]


# ---- node ports ----------------------------------------------------------------------------

RANGE_MSG = "provided port is not in the valid range. The range of valid ports is {}"


@pytest.mark.parametrize(
    "kind, node_port, expected",
    [
        ("NodePort", 30080, []),
        ("LoadBalancer", 32767, []),
        ("NodePort", 30000, []),
        ("NodePort", 29999, ["spec.ports[0].nodePort: Invalid value: 29999: " + RANGE_MSG.format("30000-32767")]),
        ("NodePort", 32768, ["spec.ports[0].nodePort: Invalid value: 32768: " + RANGE_MSG.format("30000-32767")]),
        ("ClusterIP", 30080, ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ],
)
def test_node_port_type_and_range(kind, node_port, expected):
    assert svc_problems({"type": kind, "ports": [{"port": 80, "nodePort": node_port}]}) == expected


def test_node_port_range_option():
    doc = service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]})
    assert check(doc, node_ports=NodePortRange(8000, 9000)) == []
    assert check(doc) == ["Service default/s: spec.ports[0].nodePort: Invalid value: 8080: " + RANGE_MSG.format("30000-32767")]


def test_node_ports_within_one_service():
    both = [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}, {"name": "dns-tcp", "port": 53, "nodePort": 30053}]
    assert svc_problems({"type": "NodePort", "ports": both}) == []
    same = [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}]
    assert svc_problems({"type": "NodePort", "ports": same}) == ["spec.ports[1].nodePort: Duplicate value: 30080"]


# ---- ExternalName --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"externalName": "db.example.com"}, []),
        ({"externalName": "db.example.com."}, []),  # fully qualified, with the trailing dot
        ({"externalName": "db.example.com", "ports": [{"port": 5432}]}, []),
        ({}, ["spec.externalName: Required value"]),
        ({"externalName": "DB.example.com"}, [f'spec.externalName: Invalid value: "DB.example.com": {DNS1123_SUBDOMAIN}']),
        ({"externalName": "db..example"}, [f'spec.externalName: Invalid value: "db..example": {DNS1123_SUBDOMAIN}']),
        (
            {"externalName": "db.example.com", "clusterIP": "10.0.0.1"},
            ['spec.clusterIP: Invalid value: "10.0.0.1": must be empty for ExternalName services'],
        ),
    ],
)
def test_external_name(spec, expected):
    assert svc_problems({"type": "ExternalName", **spec}) == expected


# ---- session affinity and traffic policies -------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"sessionAffinity": "ClientIP"}, []),
        ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86400}}}, []),
        ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 1}}}, []),
        (
            {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}},
            ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"],
        ),
        (
            {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
            ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"],
        ),
        (
            {"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
            ["spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"],
        ),
        ({"sessionAffinity": "Sticky"}, ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']),
    ],
)
def test_session_affinity(spec, expected):
    assert svc_problems({"ports": P80, **spec}) == expected


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"type": "NodePort", "externalTrafficPolicy": "Local"}, []),
        ({"type": "LoadBalancer", "externalTrafficPolicy": "Cluster"}, []),
        ({"externalIPs": ["192.0.2.10"], "externalTrafficPolicy": "Local"}, []),
        (
            {"externalTrafficPolicy": "Local"},
            ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'],
        ),
        (
            {"type": "NodePort", "externalTrafficPolicy": "Nearest"},
            ['spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", "Local"'],
        ),
        ({"internalTrafficPolicy": "Local"}, []),
        ({"internalTrafficPolicy": "Node"}, ['spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"']),
    ],
)
def test_traffic_policies(spec, expected):
    assert svc_problems({"ports": P80, **spec}) == expected


# ---- load balancer fields ------------------------------------------------------------------

BAD_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8", " 192.168.0.0/16 ", "2001:db8::/32", "10.1.2.3/8"]}, []),
        (
            {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33", "10.0.0.1"]},
            [
                f'spec.loadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/33": {BAD_CIDR}',
                f'spec.loadBalancerSourceRanges[1]: Invalid value: "10.0.0.1": {BAD_CIDR}',
            ],
        ),
        (
            {"type": "NodePort", "loadBalancerSourceRanges": ["10.0.0.0/8"]},
            ["spec.loadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"],
        ),
        (
            {"type": "NodePort", "allocateLoadBalancerNodePorts": False},
            ["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"],
        ),
        ({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False}, []),
    ],
)
def test_load_balancer_fields(spec, expected):
    assert svc_problems({"ports": P80, **spec}) == expected


def test_mixed_protocols_on_a_load_balancer_are_valid():
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
    assert svc_problems({"type": "LoadBalancer", "ports": ports}) == []


# ---- special addresses ---------------------------------------------------------------------

SPECIAL = [
    ("0.0.0.0", "may not be unspecified (0.0.0.0, ::)"),
    ("::", "may not be unspecified (0.0.0.0, ::)"),
    ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("127.3.2.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("::1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("fe80::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("febf::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("224.0.0.251", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("ff02::fb", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("ff12::1", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),  # Go: ff?2::
    ("::ffff:127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),  # v4-mapped is v4 to Go
    ("10.0.0", BAD_IP),
    ("10.0.0.1%eth0", BAD_IP),
    ("example.com", BAD_IP),
]
ORDINARY = ["192.0.2.1", "10.0.0.1", "2001:db8::1", "224.0.1.1", "fec0::1", "ff05::1"]


@pytest.mark.parametrize("ip, message", SPECIAL)
def test_external_ips_may_not_be_special(ip, message):
    assert svc_problems({"ports": P80, "externalIPs": [ip]}) == [f'spec.externalIPs[0]: Invalid value: "{ip}": {message}']


@pytest.mark.parametrize("ip", ORDINARY)
def test_ordinary_external_ips(ip):
    assert svc_problems({"ports": P80, "externalIPs": [ip]}) == []


@pytest.mark.parametrize("ip, message", SPECIAL)
def test_endpoints_addresses_may_not_be_special(ip, message):
    doc = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "notReadyAddresses": [{"ip": ip}], "ports": [{"port": 80}]}],
    }
    assert check(doc) == [f'Endpoints default/e: subsets[0].notReadyAddresses[0].ip: Invalid value: "{ip}": {message}']


@pytest.mark.parametrize("ip, message", [s for s in SPECIAL if ":" not in s[0] and s[1] != BAD_IP])
def test_slice_addresses_may_not_be_special(ip, message):
    doc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "e"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"]}, {"addresses": [ip]}],
    }
    assert check(doc) == [f'EndpointSlice default/e: endpoints[1].addresses[0]: Invalid value: "{ip}": {message}']


def test_slice_address_family_and_required_addresses():
    doc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "e"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["2001:db8::1"]}, {"addresses": []}],
        "ports": [{"name": "http", "port": 70000}],
    }
    assert check(doc) == [
        'EndpointSlice default/e: endpoints[0].addresses[0]: Invalid value: "2001:db8::1": must be an IPv4 address',
        "EndpointSlice default/e: endpoints[1].addresses: Required value: must contain at least 1 address",
        f"EndpointSlice default/e: ports[0].port: Invalid value: 70000: {PORT_RANGE}",
    ]


def test_endpoints_ports():
    doc = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}, {"name": "b", "port": 0, "protocol": "UDP"}]}],
    }
    assert check(doc) == [
        "Endpoints default/e: subsets[0].ports[0].name: Required value",
        f"Endpoints default/e: subsets[0].ports[1].port: Invalid value: 0: {PORT_RANGE}",
    ]


# ---- across objects ------------------------------------------------------------------------


def test_same_object_twice(write):
    path = write(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {ports: [{port: 81}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: other}
        spec: {ports: [{port: 81}]}
        """
    )
    assert problems_of(path) == [
        f"{path}:8: Service shop/web: metadata.name: Duplicate value: Service shop/web is already defined at {path}:1"
    ]


def test_two_services_with_the_same_cluster_ip():
    out = check(
        service({"clusterIP": "fd00::10", "ports": P80}, name="a"),
        service({"clusterIP": "fd00:0:0::10", "ports": P80}, name="b"),
        service({"clusterIP": "10.0.0.1", "ports": P80}, name="c", namespace="x"),
    )
    assert out == [
        'Service default/b: spec.clusterIPs[0]: Invalid value: "fd00:0:0::10": provided IP is already allocated (to Service default/a)'
    ]


def test_node_port_used_by_two_services_whatever_the_protocol():
    out = check(
        service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, name="a"),
        service({"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30080}]}, name="b"),
    )
    assert out == [
        "Service default/b: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated (to Service default/a)"
    ]


# ---- schema: unknown fields, wrong types, kinds ---------------------------------------------

UNKNOWN = "unknown field (not part of this kind's schema)"


def test_unknown_fields_are_rejected():
    assert svc_problems({"ports": P80, "ipFamily": "IPv6"}) == [f"spec.ipFamily: {UNKNOWN}"]
    slice_doc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "e", "labelz": {}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"], "condition": {"ready": True}}],
    }
    assert check(slice_doc) == [
        f"EndpointSlice default/e: metadata.labelz: {UNKNOWN}",
        f"EndpointSlice default/e: endpoints[0].condition: {UNKNOWN}",
    ]


def test_pods_ignore_fields_svcctl_does_not_read():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "someFutureField": 1},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 80}]}]},
        "status": {"podIP": "10.1.0.1", "qosClass": "BestEffort"},
    }
    assert check(pod) == []


def test_wrong_types_are_rejected():
    assert svc_problems({"ports": [{"port": "80"}]}) == ['spec.ports[0].port: Invalid value: "80": must be an integer']
    assert svc_problems({"ports": P80, "selector": ["app=web"]}) == ["spec.selector: Invalid value: list: must be an object"]
    assert svc_problems({"ports": P80, "publishNotReadyAddresses": "true"}) == [
        'spec.publishNotReadyAddresses: Invalid value: "true": must be a boolean'
    ]
    slice_doc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "e"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": "yes"}}, {"addresses": "10.1.0.2"}],
    }
    assert check(slice_doc) == [
        'EndpointSlice default/e: endpoints[0].conditions.ready: Invalid value: "yes": must be a boolean',
        'EndpointSlice default/e: endpoints[1].addresses: Invalid value: "10.1.0.2": must be a list',
    ]


def test_api_version_problems():
    no_version = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": P80}}
    beta = {"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "IPv4"}
    assert check(no_version, beta) == [
        "Service default/s: apiVersion: Required value",
        'EndpointSlice default/e: apiVersion: Unsupported value: "discovery.k8s.io/v1beta1": '
        'no longer served since Kubernetes 1.25; use "discovery.k8s.io/v1"',
    ]


# ---- valid things --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"clusterIP": "None", "selector": {"app": "db"}},
        {"type": "ExternalName", "externalName": "my.database.example.com."},
        {"type": "LoadBalancer", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "UDP"}]},
        {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"], "ports": P80},
        {"ipFamilyPolicy": "PreferDualStack", "ports": P80},
        {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 30100,
            "ports": [{"port": 443, "targetPort": "https", "appProtocol": "kubernetes.io/h2c"}],
        },
    ],
    ids=["headless", "external-name-dot", "lb-mixed", "require-dual", "prefer-dual", "lb-local"],
)
def test_valid_services(spec):
    assert svc_problems(spec) == []


def test_every_problem_at_once(write):
    path = write(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: bad
        spec:
          ports:
          - port: 80
            protocol: ICMP
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: ok
        spec:
          ports:
          - port: 80
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: two
          namespace: prod
        spec:
          type: ClusterIP
          externalTrafficPolicy: Local
          ports:
          - port: 80
            nodePort: 30001
        ---
        apiVersion: v1
        kind: Endpoints
        metadata:
          name: two
          namespace: prod
        subsets:
        - addresses:
          - ip: 127.0.0.1
          ports:
          - port: 80
        """
    )
    assert problems_of(path) == [
        f'{path}:8: Service default/bad: spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        f'{path}:25: Service prod/two: spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services',
        f"{path}:28: Service prod/two: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        f'{path}:37: Endpoints prod/two: subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    ]


def test_a_value_outside_an_enum_does_not_hide_the_objects_other_problems():
    # The API server reports both (kubectl's edit test case gets a 422 naming the two fields).
    assert sorted(svc_problems({"clusterIP": "10.0.0.182.1", "ports": [{"port": 80, "protocol": "VHF"}]})) == [
        'spec.clusterIPs[0]: Invalid value: "10.0.0.182.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
        'spec.ports[0].protocol: Unsupported value: "VHF": supported values: "SCTP", "TCP", "UDP"',
    ]


def test_a_known_kind_in_another_version_of_its_group_is_an_error_another_group_is_skipped():
    v2 = {"apiVersion": "v2", "kind": "Service", "metadata": {"name": "a"}}
    knative = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "k"}}
    slice_v2 = {"apiVersion": "discovery.k8s.io/v2", "kind": "EndpointSlice", "metadata": {"name": "e"}}
    assert check(v2, knative, slice_v2) == [
        'Service default/a: apiVersion: Unsupported value: "v2": Service is served as "v1"',
        'EndpointSlice default/e: apiVersion: Unsupported value: "discovery.k8s.io/v2": EndpointSlice is served as "discovery.k8s.io/v1"',
    ]


def test_a_problem_in_a_defaulted_field_points_at_the_line_the_user_wrote(tmp_path):
    from svcctl.sources import load

    path = tmp_path / "m.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n  clusterIP: 10.0.0.182.1\n")
    objects, _ = load([str(path)])
    with pytest.raises(InvalidInput) as err:
        validate(objects)
    assert err.value.lines() == [
        f'{path}:8: Service default/a: spec.clusterIPs[0]: Invalid value: "10.0.0.182.1": '
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    ]


def test_an_object_that_does_not_type_check_still_has_its_name_checked():
    bad = service({"ports": [{"port": "80"}]}, name="Bad_Name")
    assert sorted(check(bad)) == [
        "Service default/Bad_Name: metadata.name: Invalid value: \"Bad_Name\": a DNS-1035 label must consist of lower case "
        "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        'Service default/Bad_Name: spec.ports[0].port: Invalid value: "80": must be an integer',
    ]


def test_a_type_error_in_metadata_leaves_the_rest_of_it_checked():
    bad = service(name="Bad_Name")
    bad["metadata"]["labels"] = [1]
    assert sorted(check(bad)) == [
        "Service default/Bad_Name: metadata.labels: Invalid value: list: must be an object",
        "Service default/Bad_Name: metadata.name: Invalid value: \"Bad_Name\": a DNS-1035 label must consist of lower case "
        "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
    ]
    wrong_name = service(name=5)  # type: ignore[arg-type]
    wrong_name["metadata"]["namespace"] = "-ns"
    assert sorted(check(wrong_name)) == [
        "Service -ns/: metadata.name: Invalid value: 5: must be a string",  # not also "Required value"
        "Service -ns/: metadata.namespace: Invalid value: \"-ns\": a lowercase RFC 1123 label must consist of lower case "
        "alphanumeric characters or '-', and must start and end with an alphanumeric character",
    ]


# ---- user text in messages -----------------------------------------------------------------


def test_a_name_with_a_newline_or_an_escape_stays_on_one_line(write):
    path = write('apiVersion: v1\nkind: Service\nmetadata:\n  name: "a\\nm.yaml:1: forged\\e[31m"\nspec:\n  ports: [{port: 80, name: "x\\ty"}]\n')
    lines = problems_of(path)
    assert lines == [
        f'{path}:4: Service "default/a\\nm.yaml:1: forged\\x1b[31m": metadata.name: Invalid value: "a\\nm.yaml:1: forged\\x1b[31m": {DNS1035}',
        f'{path}:6: Service "default/a\\nm.yaml:1: forged\\x1b[31m": spec.ports[0].name: Invalid value: "x\\ty": {DNS1123_LABEL}',
    ]


def test_an_int_or_string_field_is_one_problem_not_one_per_python_type():
    assert svc_problems({"ports": [{"port": 80, "targetPort": 1.5}]}) == [
        "spec.ports[0].targetPort: Invalid value: 1.5: must be an integer or a string"
    ]
    assert svc_problems({"ports": [{"port": 80, "targetPort": True}]}) == [
        "spec.ports[0].targetPort: Invalid value: true: must be an integer or a string"
    ]


def test_values_of_a_map_are_named_by_their_key_and_null_is_null():
    assert svc_problems({"ports": P80, "selector": {"a": None, "app.kubernetes.io/name": 1}}) == [
        "spec.selector[a]: Invalid value: null: must be a string",
        "spec.selector[app.kubernetes.io/name]: Invalid value: 1: must be a string",
    ]


# ---- rules of the API server svcctl used to accept ----------------------------------------

QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
LB_ONLY = "Forbidden: may only be used when `type` is 'LoadBalancer'"
RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"type": "LoadBalancer", "loadBalancerClass": "example.com/internal-vip"}, []),
        ({"type": "NodePort", "loadBalancerClass": "example.com/internal-vip"}, [f"spec.loadBalancerClass: {LB_ONLY}"]),
        ({"type": "LoadBalancer", "loadBalancerClass": "bad class"}, [f'spec.loadBalancerClass: Invalid value: "bad class": {QUALIFIED}']),
    ],
)
def test_load_balancer_class(spec, expected):
    assert svc_problems({"ports": P80, **spec}) == expected


@pytest.mark.parametrize("value", ["PreferClose", "PreferSameZone", "PreferSameNode"])
def test_traffic_distributions_of_the_newest_release(value):
    assert svc_problems({"ports": P80, "trafficDistribution": value}) == []


def test_an_unknown_traffic_distribution():
    assert svc_problems({"ports": P80, "trafficDistribution": "Closest"}) == [
        'spec.trafficDistribution: Unsupported value: "Closest": supported values: "PreferClose", "PreferSameZone", "PreferSameNode"'
    ]


def annotated(spec: dict[str, Any], annotations: dict[str, str]) -> list[str]:
    doc = service(spec)
    doc["metadata"]["annotations"] = annotations
    prefix = "Service default/s: "
    return [p[len(prefix):] for p in check(doc)]


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        ("LoadBalancer", "10.0.0.0/8, 192.168.0.0/16 ,2001:db8::/32", []),
        ("LoadBalancer", "", []),
        ("NodePort", "10.0.0.0/8", [f"metadata.annotations[{RANGES}]: {LB_ONLY}"]),
        (
            "LoadBalancer",
            "10.0.0.0/8,10.0.0.0/33, nonsense",
            [
                f'metadata.annotations[{RANGES}]: Invalid value: "10.0.0.0/33": {BAD_CIDR}',
                f'metadata.annotations[{RANGES}]: Invalid value: "nonsense": {BAD_CIDR}',
            ],
        ),
    ],
)
def test_source_ranges_annotation(kind, value, expected):
    assert annotated({"type": kind, "ports": P80}, {RANGES: value}) == expected


def test_the_source_ranges_field_wins_over_the_annotation():
    spec = {"type": "LoadBalancer", "ports": P80, "loadBalancerSourceRanges": ["10.0.0.0/8"]}
    assert annotated(spec, {RANGES: "not even a CIDR"}) == []


def test_a_netmask_is_no_prefix_length():
    assert svc_problems({"type": "LoadBalancer", "ports": P80, "loadBalancerSourceRanges": ["10.0.0.0/255.0.0.0"]}) == [
        f'spec.loadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/255.0.0.0": {BAD_CIDR}'
    ]


def test_annotation_keys_and_their_total_size():
    assert annotated({"ports": P80}, {"Example.com/ok": "x", "bad key": "x", "a/b/c": "x"}) == [
        f'metadata.annotations: Invalid value: "bad key": {QUALIFIED}',
        "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, "
        "'-', '_' or '.', with an optional DNS subdomain prefix and '/'",
    ]
    assert annotated({"ports": P80}, {"big": "x" * (256 * 1024 - 3)}) == []
    assert annotated({"ports": P80}, {"big": "x" * (256 * 1024 - 2)}) == ["metadata.annotations: Too long: may not be more than 262144 bytes"]
    assert annotated({"ports": P80}, {"big": "é" * (128 * 1024)}) == ["metadata.annotations: Too long: may not be more than 262144 bytes"]


def test_topology_mode_must_match_its_deprecated_annotation():
    mode, hints = "service.kubernetes.io/topology-mode", "service.kubernetes.io/topology-aware-hints"
    assert annotated({"ports": P80}, {mode: "Auto", hints: "Auto"}) == []
    assert annotated({"ports": P80}, {mode: "Auto", hints: "Disabled"}) == [
        f'metadata.annotations[{mode}]: Invalid value: "Auto": must match annotations[{hints}] when both are specified'
    ]


def test_app_protocols_are_qualified_names_on_every_port():
    assert svc_problems({"ports": [{"port": 80, "appProtocol": "h t t p"}]}) == [f'spec.ports[0].appProtocol: Invalid value: "h t t p": {QUALIFIED}']
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80, "appProtocol": "-h2c"}]}],
    }
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "IPv4",
        "ports": [{"port": 80, "appProtocol": "kubernetes.io/ws"}, {"name": "b", "port": 81, "appProtocol": "x/y/z"}],
    }
    assert check(endpoints, slice_) == [
        f'Endpoints default/e: subsets[0].ports[0].appProtocol: Invalid value: "-h2c": {QUALIFIED}',
        "EndpointSlice default/e: ports[1].appProtocol: Invalid value: \"x/y/z\": a qualified name must consist of alphanumeric "
        "characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'",
    ]


def test_an_endpoints_subset_needs_addresses():
    doc = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 80}]}, {"notReadyAddresses": [{"ip": "10.1.0.1"}]}]}
    assert check(doc) == ["Endpoints default/e: subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]


def slice_with(endpoints: list[dict[str, Any]] | None = None, ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "IPv4",
        "endpoints": endpoints or [], "ports": ports or [],
    }


def test_slice_limits_follow_the_code_not_the_docs():
    # maxPorts is 20000 in validation.go; the API reference says 100.
    many = [{"name": f"p{i}", "port": 1000 + i} for i in range(150)]
    assert check(slice_with(ports=many)) == []
    too_many = [{"name": "", "port": 0}] * 20001  # past the limit, the ports themselves are not checked
    assert check(slice_with(ports=too_many)) == ["EndpointSlice default/e: ports: Too many: 20001: must have at most 20000 items"]
    endpoints = [{"addresses": ["127.0.0.1"]}] * 1001
    assert check(slice_with(endpoints)) == ["EndpointSlice default/e: endpoints: Too many: 1001: must have at most 1000 items"]
    addresses = [{"addresses": [f"10.1.0.{i}" for i in range(1, 102)]}]
    assert check(slice_with(addresses)) == ["EndpointSlice default/e: endpoints[0].addresses: Too many: 101: must have at most 100 items"]


def hinted(hints: dict[str, Any]) -> list[str]:
    prefix = "EndpointSlice default/e: endpoints[0].hints."
    out = check(slice_with([{"addresses": ["10.1.0.1"], "hints": hints}]))
    assert all(p.startswith(prefix) for p in out), out
    return [p[len(prefix):] for p in out]


def zones(*names: str) -> list[dict[str, str]]:
    return [{"name": n} for n in names]


def test_zone_hints():
    assert hinted({"forZones": zones("zone-a", "zone-b")}) == []
    assert hinted({"forZones": zones(*(f"z{i}" for i in range(9)))}) == ["forZones: Too many: 9: must have at most 8 items"]
    assert hinted({"forZones": zones("a", "-b", "a")}) == [
        f'forZones[1].name: Invalid value: "-b": {LABEL_VALUE}',
        'forZones[2].name: Duplicate value: "a"',
    ]
    # validateHints checks a zone name as a label value, and the empty value is one: the code, not
    # the intuition, decides (the empty name matches no node's zone).
    assert hinted({"forZones": [{"name": ""}, {}]}) == ['forZones[1].name: Duplicate value: ""']


def test_node_hints():
    assert hinted({"forNodes": zones("node-1", "node-2.example")}) == []
    assert hinted({"forNodes": zones("", "Node_1", "node-1", "node-1")}) == [
        f'forNodes[0].name: Invalid value: "": {DNS1123_SUBDOMAIN}',
        f'forNodes[1].name: Invalid value: "Node_1": {DNS1123_SUBDOMAIN}',
        'forNodes[3].name: Duplicate value: "node-1"',
    ]
    assert hinted({"forNodes": zones(*(f"n{i}" for i in range(9)))}) == ["forNodes: Too many: 9: must have at most 8 items"]
    # too many zone hints: the API server looks no further, not even at the node hints
    assert hinted({"forZones": zones(*(f"z{i}" for i in range(9))), "forNodes": zones("")}) == ["forZones: Too many: 9: must have at most 8 items"]


def pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_pod_hostname_and_subdomain_are_dns_labels():
    assert check(pod({"hostname": "web-0", "subdomain": "web"})) == []
    assert check(pod({"hostname": "Web_0", "subdomain": "a.b"})) == [
        f'Pod default/p: spec.hostname: Invalid value: "Web_0": {DNS1123_LABEL}',
        f'Pod default/p: spec.subdomain: Invalid value: "a.b": {DNS1123_LABEL}',
    ]


# ---- ServiceCIDR and Node: cluster-scoped ------------------------------------------------


def service_cidr(*cidrs: str, name: str = "kubernetes", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": name, **meta}, "spec": {"cidrs": list(cidrs)}}


@pytest.mark.parametrize(
    "cidrs, expected",
    [
        (["10.96.0.0/12"], []),
        (["10.96.0.0/12", "fd00:10:96::/112"], []),
        (["fd00::/64", "10.0.0.0/8"], []),
        ([], ["spec.cidrs: Required value: at least one CIDR required"]),
        (["10.0.0.0/8", "fd00::/64", "11.0.0.0/8"], ["spec.cidrs: Invalid value: 3: may only hold up to 2 values"]),
        (["10.0.0.0/8", "11.0.0.0/8"], ['spec.cidrs: Invalid value: "11.0.0.0/8": may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64']),
        (["10.0.0.0/8", "x"], ['spec.cidrs: Invalid value: "x": may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64']),
        (["10.0.0.1/8"], ['spec.cidrs[0]: Invalid value: "10.0.0.1/8": must not have bits set beyond the prefix length']),
        (["010.0.0.0/8"], ['spec.cidrs[0]: Invalid value: "010.0.0.0/8": must not have leading 0s in IP or prefix length']),
        (["10.0.0.0/08"], ['spec.cidrs[0]: Invalid value: "10.0.0.0/08": must not have leading 0s in IP or prefix length']),
        (["FD00::/64"], ['spec.cidrs[0]: Invalid value: "FD00::/64": must be in canonical form ("fd00::/64")']),
        (["::ffff:10.0.0.0/104"], ['spec.cidrs[0]: Invalid value: "::ffff:10.0.0.0/104": must not have an IPv4-mapped IPv6 address']),
        (["10.0.0.0"], [f'spec.cidrs[0]: Invalid value: "10.0.0.0": {BAD_CIDR}']),
    ],
)
def test_service_cidr(cidrs, expected):
    out = check(service_cidr(*cidrs))
    prefix = "ServiceCIDR kubernetes: "  # cluster-scoped: no namespace in its name
    assert all(p.startswith(prefix) for p in out), out
    assert [p[len(prefix):] for p in out] == expected


def test_cluster_scoped_objects_have_no_namespace():
    from svcctl.load import Source, parse_source

    docs = [
        service_cidr("10.96.0.0/12", namespace="ignored"),
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "namespace": "x", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
         "spec": {"podCIDR": "10.244.1.0/24"}, "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]}},
    ]
    objects, _ = parse_source(Source("m.yaml", yaml.safe_dump_all(docs), False))
    inventory = validate(objects)
    (cidr,), (node,) = inventory.service_cidrs, inventory.nodes
    assert (cidr.obj.ref, cidr.obj.metadata.namespace, cidr.obj.spec.cidrs) == ("kubernetes", "", ["10.96.0.0/12"])
    assert (node.obj.ref, node.obj.metadata.namespace, node.obj.zone) == ("node-1", "", "zone-a")


def test_node_names_and_labels_are_checked():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "Node_1", "labels": {"topology.kubernetes.io/zone": "-a"}}}
    assert check(node) == [
        f'Node Node_1: metadata.name: Invalid value: "Node_1": {DNS1123_SUBDOMAIN}',
        f'Node Node_1: metadata.labels[topology.kubernetes.io/zone]: Invalid value: "-a": {LABEL_VALUE}',
    ]


def test_a_cluster_scoped_object_twice_is_a_duplicate_whatever_the_namespace(write):
    path = write(
        """
        apiVersion: networking.k8s.io/v1
        kind: ServiceCIDR
        metadata: {name: extra, namespace: a}
        spec: {cidrs: [10.100.0.0/16]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: ServiceCIDR
        metadata: {name: extra, namespace: b}
        spec: {cidrs: [10.101.0.0/16]}
        """
    )
    assert problems_of(path) == [f"{path}:8: ServiceCIDR extra: metadata.name: Duplicate value: ServiceCIDR extra is already defined at {path}:1"]
