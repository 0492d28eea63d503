"""Nodes: svcctl reads a Node's name and labels only (its topology.kubernetes.io/zone label), and
checks what it reads: the name is a DNS subdomain, the labels are labels."""

from __future__ import annotations

from ..model import Node
from ..options import NodePortRange
from .metadata import check_meta
from .report import Reporter


def check_node(node: Node, report: Reporter, _: NodePortRange) -> None:
    check_meta(node.metadata, report, Node)
