"""svcctl's command line: the only place that prints, reads the world for the pure core, and
decides exit statuses. One module per group of commands; ``app`` holds the entry point."""

from .app import app, entry, main
from . import dns, manifests, rules, run, trace  # noqa: F401  (each registers its commands on ``app``)

__all__ = ["app", "entry", "main"]
