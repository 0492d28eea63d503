"""Nodes: svcctl reads a Node's name, labels (its topology.kubernetes.io/zone label) and IP
addresses, and checks what it reads: the name is a DNS subdomain, the labels are labels, an
InternalIP or ExternalIP is an IP address."""

from __future__ import annotations

from .. import formats
from ..model import Node
from ..options import NodePortRange
from .metadata import check_meta
from .report import Reporter


def check_node(node: Node, report: Reporter, _: NodePortRange) -> None:
    check_meta(node.metadata, report, Node)
    for i, address in enumerate(node.status.addresses):
        if address.type in ("InternalIP", "ExternalIP") and (errs := formats.ip_address(address.address)):
            report.invalid(("status", "addresses", i, "address"), address.address, errs)
