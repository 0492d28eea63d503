"""UDP conntrack cleanup after an apply, as kube-proxy does it: UDP has no end of connection, so
a client would keep sending to a removed endpoint until its conntrack entry timed out."""

from __future__ import annotations

import shutil
import subprocess

from .formats import ip_version


def forget_udp_flows(endpoints: tuple[tuple[str, int], ...]) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Delete the UDP conntrack entries DNATed to these endpoints. Returns the endpoints cleared
    and warnings (conntrack missing)."""
    if not endpoints:
        return (), ()
    tool = shutil.which("conntrack")
    if tool is None:
        return (), ("conntrack is not installed: UDP flows to removed endpoints were not cleared (apt-get install conntrack)",)
    for ip, port in endpoints:
        family = ["-f", "ipv6"] if ip_version(ip) == 6 else []
        # Exit status 1 only means that no entry matched.
        subprocess.run([tool, "-D", *family, "-p", "udp", "--dst-nat", ip, "--reply-port-src", str(port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return endpoints, ()
