"""``--kernel``: the back ends that can send a probe through their real rules, and the check of a
trace against what the probes met there."""

from __future__ import annotations

import importlib

from ..backends import Compiled
from ..problems import InvalidInput, Problem
from .compare import Check, compare, probe_count
from .path import Trace

# back end -> module with probe(rules, packet, destination_local, count, live) -> tuple[Observed, ...]
_PROBES = {"nftables": "svcctl.nftables.nftrace", "iptables": "svcctl.iptables.probe"}


def can_probe(backend: str) -> None:
    """Raises InvalidInput when the back end has no probe."""
    if backend not in _PROBES:
        raise InvalidInput([Problem(f"--kernel: only the {' and '.join(_PROBES)} back end can run a probe through its rules, not {backend}", file="command line")])


def check(compiled: Compiled, trace: Trace, live: bool = False) -> Check:
    """Send probes like ``trace``'s packet through the compiled rules (``live``: a copy of the
    rules the kernel holds now) in a throwaway network namespace, and compare. Raises
    KernelError without root or kernel support."""
    can_probe(compiled.backend)
    probe = importlib.import_module(_PROBES[compiled.backend]).probe
    return compare(trace, probe(compiled.rules, trace.packet, trace.node_address, probe_count(trace), live))
