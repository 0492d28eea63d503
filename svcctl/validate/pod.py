"""Pods: only what the endpoints controller reads from them (name, IPs, container ports) and the
names it gives their endpoints (spec.hostname, spec.subdomain)."""

from __future__ import annotations

from .. import formats
from ..model import Pod
from ..options import NodePortRange
from ..problems import Path
from .metadata import check_meta
from .report import Reporter


def check_pod(pod: Pod, report: Reporter, _: NodePortRange) -> None:
    check_meta(pod.metadata, report, Pod)
    for field_name in ("hostname", "subdomain"):  # both become DNS labels: <hostname>.<subdomain>.<ns>.svc
        value = getattr(pod.spec, field_name)
        if value and (errs := formats.dns1123_label(value)):
            report.invalid(("spec", field_name), value, errs)
    for i, ip in enumerate(pod.ips):
        # The EndpointSlice the controller would make of it must pass the same address rules.
        if errs := formats.non_special_ip(ip):
            path: Path = ("status", "podIPs", i, "ip") if pod.status.pod_ips else ("status", "podIP")
            report.invalid(path, ip, errs)
    for c, container in enumerate(pod.spec.containers):
        for p, port in enumerate(container.ports):
            path = ("spec", "containers", c, "ports", p)
            if errs := formats.port_number(port.container_port):
                report.invalid((*path, "containerPort"), port.container_port, errs)
            if port.name and (errs := formats.iana_svc_name(port.name)):
                report.invalid((*path, "name"), port.name, errs)
