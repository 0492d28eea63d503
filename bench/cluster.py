"""Synthetic clusters for the benchmarks: a `kubectl get -o json`-like List of Services and their
EndpointSlices, deterministic for a given size."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import yaml

_SERVICE_BASE = int(ipaddress.ip_address("10.96.0.0"))
_POD_BASE = int(ipaddress.ip_address("10.128.0.0"))


def service(i: int) -> dict[str, Any]:
    # Every tenth Service a NodePort, while the default range has ports (2,768: the first 27,680 Services).
    kind = "NodePort" if i % 10 == 0 and i // 10 < 2768 else "ClusterIP"
    port: dict[str, Any] = {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}
    if kind == "NodePort":
        port["nodePort"] = 30000 + i // 10
    spec: dict[str, Any] = {
        "type": kind,
        "clusterIP": str(ipaddress.ip_address(_SERVICE_BASE + 10 + i)),
        "ports": [port],
        "selector": {"app": f"app-{i}"},
        "sessionAffinity": "None",
    }
    spec["clusterIPs"] = [spec["clusterIP"]]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{i}", "namespace": f"ns-{i % 50}", "uid": f"uid-{i}", "resourceVersion": str(i)},
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def endpoint_slice(i: int, endpoints: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"svc-{i}-abcde",
            "namespace": f"ns-{i % 50}",
            "labels": {"kubernetes.io/service-name": f"svc-{i}", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [str(ipaddress.ip_address(_POD_BASE + i * endpoints + e))],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": f"node-{e % 10}",
                "targetRef": {"kind": "Pod", "name": f"pod-{i}-{e}", "namespace": f"ns-{i % 50}"},
            }
            for e in range(endpoints)
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def cluster(services: int, endpoints: int) -> dict[str, Any]:
    items = [service(i) for i in range(services)] + [endpoint_slice(i, endpoints) for i in range(services)]
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def write(path: str, services: int, endpoints: int, fmt: str = "json") -> None:
    data = cluster(services, endpoints)
    with open(path, "w", encoding="utf-8") as f:
        if fmt == "json":
            json.dump(data, f, indent=4)
        else:
            yaml.dump(data, f, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
