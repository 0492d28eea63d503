"""ServiceCIDR (networking.k8s.io/v1): the ranges cluster IPs come from, as ValidateServiceCIDR
in pkg/apis/networking/validation checks them."""

from __future__ import annotations

from .. import formats
from ..model import ServiceCIDR
from ..options import NodePortRange
from .metadata import check_meta
from .report import Reporter

MAX_CIDRS = 2  # one per IP family


def check_service_cidr(obj: ServiceCIDR, report: Reporter, _: NodePortRange) -> None:
    check_meta(obj.metadata, report, ServiceCIDR)
    cidrs = obj.spec.cidrs
    path = ("spec", "cidrs")
    # The API server stops at the first of these three: a wrong count or a family twice.
    if not cidrs:
        report(path, "Required value: at least one CIDR required")
    elif len(cidrs) > MAX_CIDRS:
        report.invalid(path, len(cidrs), f"may only hold up to {MAX_CIDRS} values")
    elif len(cidrs) == 2 and not _dual_stack(cidrs):
        report.invalid(path, cidrs[1], "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64")
    else:
        for i, value in enumerate(cidrs):
            if errs := formats.canonical_cidr(value):
                report.invalid((*path, i), value, errs)


def _dual_stack(cidrs: list[str]) -> bool:
    """Two CIDRs, one of each family (netutils.IsDualStackCIDRStrings: both must parse)."""
    nets = [formats.parse_cidr(c) for c in cidrs]
    return None not in nets and nets[0].version != nets[1].version  # type: ignore[union-attr]
