"""``svcctl dns``: what a cluster's DNS answers for its Services (the Kubernetes DNS-Based Service
Discovery specification v1.1.0, as CoreDNS's kubernetes plugin implements it), as a zone file.

Stages, each a module: ``settings`` (cluster domain, zone, TTL, serial, checked) -> ``records``
(resolved Services -> typed records; DNS-specific problems and warnings) -> ``zone`` (a zone's
SOA, NS and records in canonical order -> the master file or JSON, through one checking writer).
``names`` knows DNS names: generated labels, reverse names, limits. All of it is pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .settings import DnsSettings, dns_settings

if TYPE_CHECKING:
    from ..resolve import ResolvedService
    from ..validate import Inventory


def dns_text(inventory: Inventory, services: list[ResolvedService], settings: DnsSettings, as_json: bool) -> tuple[str, tuple[str, ...]]:
    """The zone file of ``settings.zone`` (default: the cluster domain), or with ``as_json`` its
    records as JSON (without a zone: every record of every zone); and the warnings. Raises
    InvalidInput for Services DNS cannot serve."""
    # records and zone (~5 ms of imports) are loaded here, not with the package: every command
    # imports it for the defaults in settings (they are in `svcctl dns --help`), only dns uses them.
    from .records import cluster_records
    from .zone import all_records, build_zone, render_json, render_zone

    cluster = cluster_records(inventory, services, settings)
    if as_json and settings.zone is None:
        return render_json(all_records(cluster, settings)), cluster.warnings
    zone = build_zone(cluster, settings.zone or settings.forward_zone, settings)
    return (render_json(zone.records) if as_json else render_zone(zone)), cluster.warnings


__all__ = ["DnsSettings", "dns_settings", "dns_text"]
