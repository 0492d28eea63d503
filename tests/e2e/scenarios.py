"""Helpers for the svcctl end-to-end traffic tests (test_traffic.py).

* Manifest builders: ``service``, ``pod``, ``endpoints``, ``endpoint_slice`` return plain dicts in
  the shape ``kubectl get -o json`` prints; ``manifest`` wraps them into one ``kind: List``.
* ``Svcctl`` runs the real ``svcctl`` console script inside the lab's node namespace (the one
  installed next to the running interpreter) and reads the node's nftables state.
* ``chi_square`` for the load-balancing test.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import sys

import pytest

# The console script of the environment pytest runs in (the venv with svcctl installed).
SVCCTL = pathlib.Path(sys.executable).parent / "svcctl"

COUNTS = re.compile(r"\[\d+:\d+\]")
NFT_COUNTS = re.compile(r"counter packets \d+ bytes \d+")

# The back ends every real-traffic test runs with: nftables, and iptables in both flavours.
BACKENDS = ("nftables", "iptables-nft", "iptables-legacy")

NODE = "node-1"
OTHER_NODE = "node-2"
# The lab's pod subnets are 10.244.1.0/24 and fd00:244:1::/64; fd00:244::/48 would NOT hold the
# latter (its third group is 1), so the IPv6 pod network is given as fd00:244::/32.
CLUSTER_CIDRS = ("10.244.0.0/16", "fd00:244::/32")
NODE_ARGS = ("--node-name", NODE, *[arg for cidr in CLUSTER_CIDRS for arg in ("--cluster-cidr", cidr)])
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# chi-square critical values at p = 0.001, by degrees of freedom
CHI2_P001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467}


# --- manifests ----------------------------------------------------------------------------------


def service(name, ports, *, selector=None, cluster_ip=None, dual_stack=None, namespace="default",
            status=None, **spec):
    """A v1 Service. ``ports`` are dicts (port, targetPort, protocol, name, nodePort);
    ``dual_stack`` = (ip4, ip6) makes it a RequireDualStack Service with both cluster IPs;
    extra keyword arguments go into spec as they are (camelCase keys)."""
    body = {"ports": ports, **spec}
    if selector is not None:
        body["selector"] = selector
    if dual_stack:
        body.update(clusterIP=dual_stack[0], clusterIPs=list(dual_stack),
                    ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack")
    elif cluster_ip:
        body["clusterIP"] = cluster_ip
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace}, "spec": body}
    if status:
        obj["status"] = status
    return obj


def port(port, target=8080, *, protocol="TCP", name=None, node_port=None):
    p = {"port": port, "targetPort": target, "protocol": protocol}
    if name is not None:
        p["name"] = name
    if node_port is not None:
        p["nodePort"] = node_port
    return p


def pod(host, labels, *, node=NODE, container_ports=(), ready=True, dual_stack=True,
        namespace="default"):
    """A running v1 Pod for a lab pod ``host`` (lab.Host): its name and addresses.
    ``container_ports`` are (name, port) or (name, port, protocol) tuples."""
    ports = [{"name": p[0], "containerPort": p[1], "protocol": p[2] if len(p) > 2 else "TCP"}
             for p in container_ports]
    ips = [{"ip": host.ip4}] + ([{"ip": host.ip6}] if dual_stack else [])
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": host.name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "server", "ports": ports}]},
        "status": {"phase": "Running", "podIP": host.ip4, "podIPs": ips,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def endpoints(name, ready, ports, *, not_ready=(), namespace="default"):
    """A v1 Endpoints object: ``ready``/``not_ready`` are (ip, nodeName) pairs, ``ports`` dicts."""
    def address(ip, node):
        return {"ip": ip, "nodeName": node}

    subset = {"addresses": [address(*a) for a in ready], "ports": ports}
    if not_ready:
        subset["notReadyAddresses"] = [address(*a) for a in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace}, "subsets": [subset]}


def endpoint_slice(service_name, slice_name, endpoints_, ports, *, address_type="IPv4",
                   namespace="default"):
    """A discovery.k8s.io/v1 EndpointSlice of ``service_name``. ``endpoints_`` are dicts
    (addresses, conditions, nodeName)."""
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name, "namespace": namespace,
                     "labels": {SERVICE_NAME_LABEL: service_name}},
        "addressType": address_type, "endpoints": list(endpoints_), "ports": ports,
    }


def slice_endpoint(ip, *, ready, serving, terminating, node=NODE):
    return {"addresses": [ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}


def manifest(*objects):
    """The objects as one ``kind: List`` JSON document (what ``kubectl get -o json`` prints)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=1) + "\n"


# --- running svcctl in the node namespace -------------------------------------------------------


class Svcctl:
    """svcctl with one back end in the lab's node namespace, and what the node holds; manifests
    are written under ``directory``. ``backend``: one of BACKENDS."""

    def __init__(self, lab, directory, backend="nftables"):
        self.lab = lab
        self.directory = pathlib.Path(directory)
        self.backend = backend
        self.flavour = backend.removeprefix("iptables-") if backend.startswith("iptables-") else None
        self._count = 0

    def write(self, text, suffix=".json"):
        self._count += 1
        path = self.directory / f"manifest-{self._count}{suffix}"
        path.write_text(text, encoding="utf-8")
        return str(path)

    def backend_args(self):
        return ["--backend", "iptables", "--iptables-mode", self.flavour] if self.flavour else []

    def run(self, *args, timeout=60):
        """svcctl COMMAND ARGS, with this back end, in the node namespace; the CompletedProcess,
        whatever the exit status."""
        command, *rest = args
        return self.lab.node_exec([str(SVCCTL), command, *self.backend_args(), *rest], timeout=timeout, check=False)

    def _manifest_args(self, objects_or_text):
        text = objects_or_text if isinstance(objects_or_text, str) else manifest(*objects_or_text)
        return self.write(text)

    def apply(self, objects, *extra, node_args=NODE_ARGS, check=True):
        """``svcctl apply`` of the objects (a list of dicts or manifest text); with ``check``
        an exit status other than 0 fails the test with svcctl's output."""
        proc = self.run("apply", self._manifest_args(objects), *node_args, *extra)
        if check:
            assert proc.returncode == 0, f"apply failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        return proc

    def dry_run(self, objects, node_args=NODE_ARGS):
        return self.run("apply", "--dry-run", self._manifest_args(objects), *node_args)

    def diff(self, objects, node_args=NODE_ARGS):
        return self.run("diff", self._manifest_args(objects), *node_args)

    def delete(self):
        return self.run("delete")

    def saved(self, flavour):
        """iptables-save of both families with one flavour, without its date lines and packet
        counts (stray packets such as IPv6 neighbour discovery change those)."""
        out = "".join(self.lab.node_exec([f"{f}-{flavour}-save"]).stdout for f in ("iptables", "ip6tables"))
        return COUNTS.sub("[0:0]", "".join(line for line in out.splitlines(keepends=True) if not line.startswith("#")))

    def ruleset(self):
        """Every rule of the node namespace: ``nft list ruleset`` (iptables-nft's tables
        included, without packet counts) and, with iptables-legacy, its tables."""
        nft = NFT_COUNTS.sub("counter", self.lab.node_exec(["nft", "list", "ruleset"]).stdout)
        return nft + (self.saved("legacy") if self.flavour == "legacy" else "")

    def owned(self):
        """What svcctl made: its nftables tables ("ip svcctl") or its iptables chains
        ("iptables nat SVCCTL-SERVICES")."""
        if not self.flavour:
            return {t for t in self.tables() if t.endswith(" svcctl")}
        found = set()
        for family in ("iptables", "ip6tables"):
            table = ""
            for line in self.lab.node_exec([f"{family}-{self.flavour}-save"]).stdout.splitlines():
                if line.startswith("*"):
                    table = line[1:]
                elif line.startswith(":SVCCTL-"):
                    found.add(f"{family} {table} {line[1:].split()[0]}")
        return found

    def tables(self):
        """{"ip svcctl", "inet other", ...}: the node's nftables tables."""
        out = self.lab.node_exec(["nft", "list", "tables"]).stdout
        return {line.removeprefix("table ").strip() for line in out.splitlines() if line.strip()}


# --- back ends ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS, name="backend")
def backend_fixture(request):
    """``backend``: the back end a test module's tests run with, each test once per back end,
    grouped by back end (import this into the module)."""
    name = request.param
    if name.startswith("iptables-"):
        flavour = name.removeprefix("iptables-")
        missing = [p for f in ("iptables", "ip6tables") for a in ("save", "restore") if not shutil.which(p := f"{f}-{flavour}-{a}")]
        if missing:
            pytest.skip(f"not installed: {', '.join(missing)}")
    return name


# --- statistics ---------------------------------------------------------------------------------


def chi_square(counts, categories):
    """Pearson's chi-square statistic of ``counts`` (a mapping) against a uniform distribution
    over ``categories``; a category missing from counts counts 0."""
    total = sum(counts.get(c, 0) for c in categories)
    expected = total / len(categories)
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in categories)
