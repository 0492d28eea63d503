"""``svcctl dns``: the cluster's DNS records for the Services in the manifests, as a zone file."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Optional

import typer

from ..dns import dns_settings, dns_text
from ..dns.settings import DEFAULT_CLUSTER_DOMAIN, DEFAULT_TTL, MAX_TTL
from ..options import Options
from ..pipeline import read_services
from ..sources import read_manifests
from .app import app, kept
from .manifests import say_skipped
from .settings import AllProblems, Manifests, Verbose, with_options


class ZoneFormat(StrEnum):
    ZONE = "zone"
    JSON = "json"


@app.command()
@with_options("node_name", "service_cidr", "service_node_port_range", "config")
def dns(
    manifests: Manifests,
    options: Options,
    cluster_domain: Annotated[Optional[str], typer.Option("--cluster-domain", metavar="DOMAIN", help=f"The cluster's DNS domain (default: {DEFAULT_CLUSTER_DOMAIN}).")] = None,
    zone: Annotated[Optional[str], typer.Option("--zone", metavar="ZONE", help="The zone to write: the cluster domain, or a reverse zone (10.in-addr.arpa, d.f.ip6.arpa, ...) holding the PTR records inside it.")] = None,
    output: Annotated[ZoneFormat, typer.Option("--output", "-o", help="zone (an RFC 1035 zone file) or json (every record of every zone, or of --zone).")] = ZoneFormat.ZONE,
    ttl: Annotated[Optional[int], typer.Option("--ttl", metavar="SECONDS", help=f"TTL of the records, 0-{MAX_TTL} s (default: {DEFAULT_TTL}, as CoreDNS).")] = None,
    serial: Annotated[Optional[int], typer.Option("--serial", metavar="N", help="SOA serial (default: derived from the zone's content).")] = None,
    verbose: Verbose = False,
    all_problems: AllProblems = False,
) -> None:
    """Print the Services' DNS records (Kubernetes DNS spec 1.1.0) as a zone file.

    \b
    Examples:
      svcctl dns manifests/ > cluster.local.zone
      svcctl dns manifests/ --zone 10.in-addr.arpa
      svcctl dns manifests/ -o json
    Exit status: 0 ok, 2 invalid input.
    """
    settings = dns_settings({"cluster-domain": cluster_domain, "zone": zone, "ttl": ttl, "serial": serial})
    inventory, services = kept(read_services(read_manifests(manifests), options))
    say_skipped(inventory, verbose)
    text, warnings = dns_text(inventory, services, settings, as_json=output is ZoneFormat.JSON)
    for warning in warnings:
        typer.echo(f"svcctl: warning: {warning}", err=True)
    sys.stdout.write(text)
