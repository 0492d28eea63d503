"""The zones `svcctl dns` writes, served by real authoritative DNS servers and queried over the
network: Knot DNS (knotd, with its semantic checks on) and NSD, both from Debian (scripts/setup
installs them). Each test starts its own server on a free loopback port with its configuration
and zone files in a temporary directory, and stops it after; nothing listens on port 53.

The same manifests give every answer a client of a cluster's DNS relies on (Kubernetes DNS spec
1.1.0): A, AAAA, SRV, CNAME, PTR (IPv4 and IPv6), headless per-endpoint names, NXDOMAIN for names
that do not exist and for not-ready endpoints; and after an input change, a regenerated zone
reloaded into the running server gives the new answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator

import pytest

from svcctl.dns import dns_settings, dns_text
from svcctl.options import build_options
from svcctl.load import Inputs, Source
from svcctl.pipeline import read_services

dns = pytest.importorskip("dns", reason="dnspython (Debian package python3-dnspython) is not installed")
import dns.exception  # noqa: E402, F811  (the submodules of the package importorskip found)
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.reversename  # noqa: E402

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
# The headless case (hostnames, not-ready endpoints, dual-stack, named ports) and the docs'
# ExternalName example, as one input.
MANIFEST = (GOLDEN / "dns-headless" / "manifest.yaml").read_text() + "---\n" + (GOLDEN / "docs-externalname" / "manifest.yaml").read_text()
ZONES = ("cluster.local", "10.in-addr.arpa", "d.f.ip6.arpa")


def zones_of(manifest: str) -> dict[str, str]:
    """Zone name -> zone file text, through the same functions as `svcctl dns`."""
    options = build_options({"node-name": "node-1"})
    inventory, services = read_services(Inputs([Source("manifest.yaml", manifest, False)], []), options)
    return {z: dns_text(inventory, services, dns_settings({"zone": z}), as_json=False)[0] for z in ZONES}


def serial_of(zone_text: str) -> int:
    return int(zone_text.splitlines()[1].split()[6])


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (servers answer on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class Server(ABC):
    """One authoritative server process serving zone files from a temporary directory."""

    binaries: tuple[str, ...] = ()

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"

    @classmethod
    def missing(cls) -> str | None:
        absent = [b for b in cls.binaries if not shutil.which(b, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")]
        return f"{', '.join(absent)} not installed (scripts/setup installs it)" if absent else None

    @staticmethod
    def which(binary: str) -> str:
        found = shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
        assert found, binary
        return found

    def write_zones(self, zones: dict[str, str]) -> None:
        for name, text in zones.items():
            (self.dir / f"{name}.zone").write_text(text)

    def start(self, zones: dict[str, str]) -> None:
        self.write_zones(zones)
        self.check(zones)
        self.configure(zones)
        with open(self.log, "wb") as log:
            # Its own process group: stop() ends the server and whatever it forked, and nothing else.
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(zones)

    def reload(self, zones: dict[str, str]) -> None:
        self.write_zones(zones)
        self.check(zones)
        self.control_reload(zones)
        self.wait_for(zones)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def query(self, name: str, rdtype: str, timeout: float = 2) -> Any:
        message = dns.message.make_query(name, rdtype)
        message.flags &= ~dns.flags.RD  # an authoritative server: no recursion asked
        return dns.query.udp(message, "127.0.0.1", port=self.port, timeout=timeout)

    def wait_for(self, zones: dict[str, str]) -> None:
        """Until every zone answers its SOA with the serial of the text just written."""
        deadline = time.monotonic() + 15
        pending = dict(zones)
        while pending:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"{type(self).__name__} exited ({self.process.returncode}):\n{self.log.read_text()}")
            for name, text in list(pending.items()):
                try:
                    answer = self.query(name, "SOA", timeout=0.2)
                except (dns.exception.Timeout, ConnectionRefusedError):
                    continue
                if answer.rcode() == dns.rcode.NOERROR and answer.answer and answer.answer[0][0].serial == serial_of(text):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                pytest.fail(f"{type(self).__name__} did not load {sorted(pending)}:\n{self.log.read_text()}")
            time.sleep(0.05)

    def run(self, *args: str) -> None:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}{done.stderr}"

    @abstractmethod
    def check(self, zones: dict[str, str]) -> None:
        """The server's own zone checker on each file."""

    @abstractmethod
    def configure(self, zones: dict[str, str]) -> None: ...

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def control_reload(self, zones: dict[str, str]) -> None: ...


class Knot(Server):
    binaries = ("knotd", "knotc", "kzonecheck")

    def check(self, zones: dict[str, str]) -> None:
        for name in zones:
            self.run(self.which("kzonecheck"), "-o", name, str(self.dir / f"{name}.zone"))

    def configure(self, zones: dict[str, str]) -> None:
        (self.dir / "db").mkdir()
        # semantic-checks on: knotd refuses a zone that fails them (missing glue, CNAME next to
        # other data, ...). The zone file is the only source: no journal, never written back.
        (self.dir / "knot.conf").write_text(
            f"""server:
    rundir: "{self.dir}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stdout
    any: info
database:
    storage: "{self.dir}/db"
control:
    listen: "{self.dir}/knot.sock"
template:
  - id: default
    storage: "{self.dir}"
    file: "%s.zone"
    semantic-checks: on
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
zone:
"""
            + "".join(f"  - domain: {name}\n" for name in zones)
        )

    def command(self) -> list[str]:
        return [self.which("knotd"), "-c", str(self.dir / "knot.conf")]

    def control_reload(self, zones: dict[str, str]) -> None:
        self.run(self.which("knotc"), "-c", str(self.dir / "knot.conf"), "-b", "zone-reload", *zones)


class Nsd(Server):
    binaries = ("nsd", "nsd-control", "nsd-checkzone")

    def check(self, zones: dict[str, str]) -> None:
        for name in zones:
            self.run(self.which("nsd-checkzone"), name, str(self.dir / f"{name}.zone"))

    def configure(self, zones: dict[str, str]) -> None:
        d = self.dir
        (d / "nsd.conf").write_text(
            f"""server:
    ip-address: 127.0.0.1@{self.port}
    port: {self.port}
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    logfile: "{self.log}"
    username: ""
    chroot: ""
    server-count: 1
    verbosity: 2
remote-control:
    control-enable: yes
    control-interface: "{d}/nsd.ctl"
"""
            + "".join(f"zone:\n    name: {name}\n    zonefile: {name}.zone\n" for name in zones)
        )

    def command(self) -> list[str]:
        return [self.which("nsd"), "-d", "-c", str(self.dir / "nsd.conf")]

    def control_reload(self, zones: dict[str, str]) -> None:
        for name in zones:
            self.run(self.which("nsd-control"), "-c", str(self.dir / "nsd.conf"), "reload", name)


SERVERS = [pytest.param(cls, marks=pytest.mark.skipif(cls.missing() is not None, reason=cls.missing() or ""), id=cls.__name__.lower()) for cls in (Knot, Nsd)]


def _serve(cls: type[Server], workdir: Path) -> Iterator[Server]:
    instance = cls(workdir)
    try:
        instance.start(zones_of(MANIFEST))
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per kind for the tests that only query."""
    yield from _serve(request.param, tmp_path_factory.mktemp(request.param.__name__.lower()))


@pytest.fixture(params=SERVERS)
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own, for a test that changes what it serves."""
    yield from _serve(request.param, tmp_path)


# ---- answers ------------------------------------------------------------------------------------


def answers(server: Server, name: str, rdtype: str) -> set[str]:
    """The answer's data for NOERROR with data, authoritative. Fails on anything else."""
    response = server.query(name, rdtype)
    assert response.rcode() == dns.rcode.NOERROR, (name, rdtype, dns.rcode.to_text(response.rcode()))
    assert response.flags & dns.flags.AA
    wanted = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for rrset in response.answer if rrset.rdtype == wanted for rd in rrset}


def assert_nxdomain(server: Server, name: str, rdtype: str = "A") -> None:
    response = server.query(name, rdtype)
    assert response.rcode() == dns.rcode.NXDOMAIN, (name, dns.rcode.to_text(response.rcode()), response.answer)
    assert response.flags & dns.flags.AA


def test_cluster_ip_service(server: Server):
    name = "kube-dns.kube-system.svc.cluster.local."
    assert answers(server, name, "A") == {"10.96.0.10"}
    assert answers(server, name, "AAAA") == {"fd00:10:96::a"}
    assert answers(server, f"_dns._udp.{name}", "SRV") == {f"0 100 53 {name}"}
    assert answers(server, f"_dns-tcp._tcp.{name}", "SRV") == {f"0 100 53 {name}"}


def test_schema_version_soa_and_ns(server: Server):
    assert answers(server, "dns-version.cluster.local.", "TXT") == {'"1.1.0"'}
    assert answers(server, "cluster.local.", "NS") == {"ns.dns.cluster.local."}
    assert answers(server, "ns.dns.cluster.local.", "A") == {"10.96.0.10"}


def test_external_name(server: Server):
    response = server.query("my-service.prod.svc.cluster.local.", "A")
    assert response.rcode() == dns.rcode.NOERROR
    (rrset,) = response.answer  # the CNAME; the target is outside the server's zones
    assert rrset.rdtype == dns.rdatatype.CNAME and rrset[0].to_text() == "my.database.example.com."


def test_headless_service(server: Server):
    base = "db.shop.svc.cluster.local."
    assert answers(server, base, "A") == {"10.244.1.10", "10.244.2.11", "10.244.1.13"}
    assert answers(server, base, "AAAA") == {"fd00:10:244:1::10", "fd00:10:244:2::11"}
    assert answers(server, f"db-0.{base}", "A") == {"10.244.1.10"}
    assert answers(server, f"db-0.{base}", "AAAA") == {"fd00:10:244:1::10"}
    assert answers(server, f"10-244-1-13.{base}", "A") == {"10.244.1.13"}  # no hostname: the generated label
    assert answers(server, f"_pg._tcp.{base}", "SRV") == {
        f"0 33 15432 db-0.{base}", f"0 33 15432 db-1.{base}", f"0 33 15432 10-244-1-13.{base}",
    }
    assert answers(server, "cache-a.cache.shop.svc.cluster.local.", "AAAA") == {"fd00:10:244:1::20"}
    assert answers(server, "ldap-0.legacy.ops.svc.cluster.local.", "A") == {"10.244.3.30"}
    assert answers(server, "queue-0.queue.ops.svc.cluster.local.", "A") == {"10.244.3.40"}  # publishNotReadyAddresses
    assert answers(server, "logs.ops.svc.cluster.local.", "A") == {"10.244.3.50"}  # a headless Service without ports
    assert answers(server, "logs-0.logs.ops.svc.cluster.local.", "A") == {"10.244.3.50"}


def test_reverse_lookups(server: Server):
    assert answers(server, "10.0.96.10.in-addr.arpa.", "PTR") == {"kube-dns.kube-system.svc.cluster.local."}
    assert answers(server, "10.1.244.10.in-addr.arpa.", "PTR") == {"db-0.db.shop.svc.cluster.local."}
    v6 = dns.reversename.from_address("fd00:10:96::a").to_text()
    assert answers(server, v6, "PTR") == {"kube-dns.kube-system.svc.cluster.local."}
    assert answers(server, dns.reversename.from_address("fd00:10:244:2::11").to_text(), "PTR") == {"db-1.db.shop.svc.cluster.local."}
    assert_nxdomain(server, "12.2.244.10.in-addr.arpa.", "PTR")  # db-2: not ready


def test_nxdomain(server: Server):
    assert_nxdomain(server, "nosuch.shop.svc.cluster.local.")
    assert_nxdomain(server, "db-2.db.shop.svc.cluster.local.")  # not ready: no name
    assert_nxdomain(server, "cache-b.cache.shop.svc.cluster.local.")  # not ready (terminating)
    assert_nxdomain(server, "ldap-1.legacy.ops.svc.cluster.local.")  # a notReadyAddress
    assert_nxdomain(server, "_nosuch._tcp.db.shop.svc.cluster.local.", "SRV")


def test_answers_follow_a_changed_input_after_a_reload(own_server: Server):
    server = own_server
    changed = (
        MANIFEST.replace("podIPs: [{ip: 10.244.2.11}, {ip: \"fd00:10:244:2::11\"}]\n  conditions: [{type: Ready, status: \"True\"}]",
                         "podIPs: [{ip: 10.244.2.11}, {ip: \"fd00:10:244:2::11\"}]\n  conditions: [{type: Ready, status: \"False\"}]")
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: new, namespace: shop}\nspec:\n  clusterIP: 10.96.0.77\n  ports: [{name: http, port: 80}]\n"
    )
    assert changed.count('status: "False"') == MANIFEST.count('status: "False"') + 1
    zones = zones_of(changed)
    assert serial_of(zones["cluster.local"]) != serial_of(zones_of(MANIFEST)["cluster.local"])
    server.reload(zones)
    base = "db.shop.svc.cluster.local."
    assert_nxdomain(server, f"db-1.{base}")  # db-1 is not ready any more
    assert answers(server, base, "A") == {"10.244.1.10", "10.244.1.13"}
    assert answers(server, "new.shop.svc.cluster.local.", "A") == {"10.96.0.77"}
    assert answers(server, "77.0.96.10.in-addr.arpa.", "PTR") == {"new.shop.svc.cluster.local."}
    assert_nxdomain(server, "11.2.244.10.in-addr.arpa.", "PTR")
