"""``svcctl run``'s metrics, in Prometheus' text format (prometheus-client, a registry of its
own). Names follow kube-proxy's (pkg/proxy/metrics) with ``svcctl_`` for ``kubeproxy_`` where
the meaning is the same, so its dashboards can be reused; the bucket layout of the sync
duration histograms is kube-proxy's too (1 ms doubling up to ~16 s)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .reconcile import SyncReport

BUCKETS = tuple(0.001 * 2**k for k in range(15))
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.sync_duration = Histogram(
            "svcctl_sync_proxy_rules_duration_seconds", "How long a sync took: inventory, plan and commit to the kernel.",
            ["kind"], buckets=BUCKETS, registry=r,
        )
        self.last_sync = Gauge(
            "svcctl_sync_proxy_rules_last_timestamp_seconds", "When the last sync that succeeded ended (Unix time).", registry=r
        )
        self.last_queued = Gauge(
            "svcctl_sync_proxy_rules_last_queued_timestamp_seconds", "When the source last reported a change (Unix time).", registry=r
        )
        self.changes = Counter("svcctl_source_changes", "Changes the source reported (files, or API objects, added, changed or removed).", registry=r)
        self.services = Gauge("svcctl_services", "Services with rules on this node (accepted, resolved).", registry=r)
        self.endpoints = Gauge("svcctl_endpoints", "Endpoints of those Services, over all their ports.", registry=r)
        self.rules = Gauge(
            "svcctl_rules", "Objects in svcctl's kernel rules, by the back end's names (nftables: chains, elements).", ["kind"], registry=r
        )
        self.invalid = Gauge("svcctl_input_problems", "Problems in the input now (objects left out or kept at their last good version).", registry=r)
        self.invalid_total = Counter("svcctl_invalid_inputs", "Problems found in the input, each counted when it appears.", registry=r)
        self.kernel_errors = Counter(
            "svcctl_kernel_errors", "Syncs the kernel refused or that could not reach it (retried with backoff).", registry=r
        )
        self.healthz = Counter("svcctl_proxy_healthz", "/healthz answers, by HTTP status code.", ["code"], registry=r)
        # kube-proxy's buckets: 0.25 s, 0.5 s, then 1 s steps to 59 s, 5 s steps to 115 s, 30 s steps to 300 s.
        self.network_programming = Histogram(
            "svcctl_network_programming_duration_seconds",
            "From an EndpointSlice change (its endpoints.kubernetes.io/last-change-trigger-time) to the sync that put it in the rules.",
            buckets=(0.25, 0.5, *range(1, 60), *range(60, 120, 5), *range(120, 301, 30)), registry=r,
        )
        self.api_errors = Counter(
            "svcctl_api_errors", "Kubernetes API requests that failed, by resource and HTTP status code (or connection, timeout, "
            "protocol); 410 is an expired resourceVersion, answered by listing again.", ["resource", "code"], registry=r,
        )
        self.api_lists = Counter("svcctl_api_lists", "Lists of a Kubernetes API resource (the first, and each after a 410).", ["resource"], registry=r)
        self.health_check_services = Gauge(
            "svcctl_health_check_node_ports", "healthCheckNodePort servers open (LoadBalancer Services with externalTrafficPolicy Local).",
            registry=r,
        )

    def synced(self, report: SyncReport, now: float) -> None:
        """Record one sync; ``now`` is Unix time."""
        self.sync_duration.labels(report.kind.label).observe(report.seconds)
        if report.result is not None:
            self.last_sync.set(now)
            for when in report.triggered:
                self.network_programming.observe(max(now - when, 0.0))
        else:
            self.kernel_errors.inc()
        self.invalid.set(report.problems)
        self.invalid_total.inc(len(report.new_problems))
        self.services.set(report.totals.get("services", 0))
        self.endpoints.set(report.totals.get("endpoints", 0))
        for kind, value in report.totals.items():
            if kind not in ("services", "endpoints"):
                self.rules.labels(kind).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
