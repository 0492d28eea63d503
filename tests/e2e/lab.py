"""Network-namespace lab for svcctl end-to-end tests.

One ``Lab`` is a small Kubernetes node built from network namespaces (needs root and iproute2):

    client namespaces                 node namespace                      pod namespaces
    eth0 192.168.50.2+/24   --veth--  ext0 (bridge) 192.168.50.1/24
         fd00:50::2+/64                             fd00:50::1/64
                                      cbr0 (bridge) 10.244.1.1/24  --veth--  eth0 10.244.1.2+/24
                                                    fd00:244:1::1/64              fd00:244:1::2+/64
                                      svc0 (sink)   routes for 10.96.0.0/12, fd00:10:96::/112

Pods get addresses in the order they are listed (first pod .2 / ::2, next .3 / ::3, ...), clients
likewise on the client network. Every pod runs ``podserver.py``, which answers each TCP connection
and UDP datagram with one JSON line {"pod": name, "peer": source address seen, "port": local port}.

Usage::

    with Lab(pods=["pod-a", "pod-b"], clients=["client"]) as lab:
        lab.nft(ruleset_text)                         # load rules into the node namespace
        lab.request("client", "10.96.0.10", 80)       # -> {"pod": "pod-a", "peer": ..., "port": 8080}
        lab.requests("client", "10.96.0.10", 80, n=100)   # -> [Result, ...] from one process

Namespace names are ``<prefix>-<pid>-<random>-<role>`` so parallel runs never clash; leftovers of
runs whose process died are removed by ``cleanup_stale()`` (called on every ``Lab`` start). All
addresses live inside the lab's namespaces: no traffic leaves them.

Kernel facts this topology relies on (measured on Linux 6.18, see test_lab.py):

* br_netfilter is built into this kernel and per network namespace; ``net.bridge.bridge-nf-call-
  iptables`` / ``-ip6tables`` default to 1 in every new namespace, and the lab sets them to 1
  explicitly, as kube-proxy setups do. It is needed for pod -> ClusterIP -> other pod on the same
  bridge: the request is routed by the node (it is addressed to the gateway's MAC) and DNATed, but
  the backend's reply is addressed to the client pod's own IP on the same L2 segment, so without
  br_netfilter it is bridged straight back, never un-DNATed, and the client pod drops a reply from
  an address it never talked to. With br_netfilter bridged IPv4/IPv6 frames also traverse the
  ip/ip6/inet netfilter hooks (nftables tables included), so conntrack reverses the NAT.
  Client -> ClusterIP -> pod works either way (both directions are routed by the node).
* Hairpin: with br_netfilter, a packet DNATed back onto the bridge it came from is bridged out
  (not routed), and when the backend is the very pod that sent it, it must leave through the port
  it entered by. A bridge only does that on ports in hairpin mode, which kubelet turns on; the
  connection also has to be masqueraded, otherwise the pod sees a packet from its own address.
* The node needs a unicast route for the service CIDRs. Without one, a packet to a ClusterIP that
  no rule DNATs (e.g. a service without endpoints that a filter chain should reject) fails the
  routing lookup before the forward hook (the node answers ICMP net unreachable itself) and a
  connection from the node itself fails in connect() with ENETUNREACH. A blackhole route drops
  silently (node-local connect gets EINVAL), an unreachable route answers like no route: neither
  reaches forward. Real nodes have a default route; this kernel has no dummy interface
  (CONFIG_DUMMY is off), so the routes point at one end of a veth pair (``svc0``) that leads
  nowhere: such packets are lost (ARP/ND gets no answer) and the request times out.
* ICMP errors are rate limited per peer by default (net.ipv4.icmp_ratemask, net.ipv6.icmp.ratemask):
  of 200 quick requests to a rejected service only ~35 got "refused", the rest timed out. Every
  lab namespace turns the rate limit off so that reject tests are deterministic.
* IPv6 TCP rejected with an ICMPv6 error (inet ``reject``) is "refused" only after ~1 s here: the
  first error arrives while connect() still holds the socket lock and is dropped
  (TcpExtLockDroppedIcmps), the one for the SYN retransmitted after 1 s counts. IPv4 and
  ``reject with tcp reset`` are refused at once. Give such requests a timeout above 1 s.
"""

import collections
import dataclasses
import json
import os
import pathlib
import secrets
import selectors
import shlex
import shutil
import signal
import subprocess
import time

PYTHON = "/usr/bin/python3"
PODSERVER = pathlib.Path(__file__).with_name("podserver.py")
PREFIX = "svclab"

POD_GATEWAY4, POD_PREFIX4 = "10.244.1.1", "10.244.1."
POD_GATEWAY6, POD_PREFIX6 = "fd00:244:1::1", "fd00:244:1::"
NODE_IP4, CLIENT_PREFIX4 = "192.168.50.1", "192.168.50."
NODE_IP6, CLIENT_PREFIX6 = "fd00:50::1", "fd00:50::"
SERVICE_CIDRS = ("10.96.0.0/12", "fd00:10:96::/112")

MAX_REQUESTS = 10_000
SERVER_START_TIMEOUT = 5.0


_FIXED_PORT_CLIENT = """
import json, socket, sys
addr, port, answer = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if ":" in addr else "0.0.0.0", 40053))
s.settimeout(2)
s.sendto(b"hi", (addr, port))
if answer:
    print(json.loads(s.recv(4096))["pod"])
"""


class LabError(RuntimeError):
    """A lab command failed; ``proc`` is the CompletedProcess when there was one."""

    def __init__(self, message, proc=None):
        super().__init__(message)
        self.proc = proc


@dataclasses.dataclass(frozen=True)
class Host:
    """One namespace of the lab: logical name, real netns name and its addresses."""
    name: str
    netns: str
    ip4: str
    ip6: str


@dataclasses.dataclass(frozen=True)
class Result:
    """Outcome of one request.

    ``reply`` is the server's JSON line as a dict, or None. ``error`` is None on success, else
    "refused" (ECONNREFUSED: TCP reset to the SYN or ICMP port unreachable), "reset"
    (ECONNRESET), "unreachable" (EHOSTUNREACH/ENETUNREACH, ICMP or local routing), "timeout"
    (nothing came back in time), "bad-reply" (not one JSON line) or an errno name such as
    "EACCES" (ICMP admin-prohibited).
    ``seconds`` is the wall time the request took.
    """
    reply: dict | None
    error: str | None
    seconds: float

    @property
    def ok(self):
        return self.error is None


class RequestError(Exception):
    """``Lab.request`` did not get a reply; ``result`` says why."""

    def __init__(self, result):
        super().__init__(f"{result.error} after {result.seconds:.3f}s")
        self.result = result


class Rejected(RequestError):
    """Actively refused: refused, reset, unreachable or a bad reply (comes back at once)."""


class Timeout(RequestError):
    """Nothing came back before the timeout (packets dropped or lost)."""


def pods_seen(results):
    """Count successful results per answering pod name: Counter({"pod-a": 51, ...})."""
    return collections.Counter(r.reply["pod"] for r in results if r.ok)


# Runs inside a namespace: argv[1] is JSON [addr, port, proto, n, timeout]. Prints one JSON
# line {"reply", "error", "seconds"} per request; at most n requests of at most timeout each.
_CLIENT = r"""
import errno, json, socket, sys, time
addr, port, proto, n, timeout = json.loads(sys.argv[1])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
NAMES = {errno.ECONNREFUSED: "refused", errno.ECONNRESET: "reset",
         errno.EHOSTUNREACH: "unreachable", errno.ENETUNREACH: "unreachable"}

def one():
    deadline = time.monotonic() + timeout
    with socket.socket(family, kind) as s:
        s.settimeout(timeout)
        s.connect((addr, port))
        if kind == socket.SOCK_DGRAM:
            s.send(b"hello\n")
        data = b""
        while not data.endswith(b"\n"):
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = s.recv(4096)
            data += chunk
            if not chunk or kind == socket.SOCK_DGRAM:
                break
    return json.loads(data)

for _ in range(n):
    start = time.monotonic()
    reply = error = None
    try:
        reply = one()
    except TimeoutError:
        error = "timeout"
    except OSError as e:
        error = NAMES.get(e.errno) or errno.errorcode.get(e.errno, str(e))
    except ValueError:
        error = "bad-reply"
    print(json.dumps({"reply": reply, "error": error, "seconds": time.monotonic() - start}))
"""


def run(argv, *, input=None, timeout=30, check=True):
    """Run argv (a list, never a shell string) and return the CompletedProcess (text mode).

    Raises LabError if it exits non-zero (unless check=False) or runs longer than timeout.
    """
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{shlex.join(argv)} timed out after {timeout}s") from e
    if check and proc.returncode != 0:
        raise LabError(f"{shlex.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}",
                       proc)
    return proc


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _delete_netns(netns):
    """Kill every process left in netns, then delete it. Raises LabError if deletion fails."""
    for pid in run(["ip", "netns", "pids", netns], check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    run(["ip", "netns", "delete", netns])


def cleanup_stale(prefix=PREFIX):
    """Delete namespaces named <prefix>-<pid>-... whose creating process no longer exists.

    Returns the deleted names. Raises LabError if a deletion fails.
    """
    listing = run(["ip", "-json", "netns", "list"]).stdout.strip()
    deleted = []
    for entry in json.loads(listing) if listing else []:
        parts = entry["name"].split("-")
        if (len(parts) >= 4 and "-".join(parts[:-3]) == prefix and parts[-3].isdigit()
                and not _pid_alive(int(parts[-3]))):
            _delete_netns(entry["name"])
            deleted.append(entry["name"])
    return deleted


class Lab:
    """A node, pods and clients in network namespaces; a context manager.

    ``pods`` and ``clients`` are logical names (unique, not "node"); every pod serves the given
    TCP and UDP ports on IPv4 and IPv6. Entering builds everything and waits until all pod
    servers listen; on any failure what was built is torn down and the error (LabError,
    usually) propagates. Leaving kills the servers and deletes every namespace, even when the
    body raised.
    """

    def __init__(self, pods=("pod-a", "pod-b", "pod-c"), clients=("client",),
                 tcp_ports=(8080,), udp_ports=(8080,), prefix=PREFIX):
        names = ["node", *pods, *clients]
        if len(set(names)) != len(names):
            raise ValueError(f"pod and client names must be unique and not 'node': {names}")
        if len(pods) > 250 or len(clients) > 250:
            raise ValueError("at most 250 pods and 250 clients")
        self.tcp_ports, self.udp_ports = tuple(tcp_ports), tuple(udp_ports)
        self.prefix = prefix
        base = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        self.node = Host("node", f"{base}-node", NODE_IP4, NODE_IP6)
        self.pods = {name: Host(name, f"{base}-p{i}", f"{POD_PREFIX4}{i + 2}",
                                f"{POD_PREFIX6}{i + 2:x}")
                     for i, name in enumerate(pods)}
        self.clients = {name: Host(name, f"{base}-c{i}", f"{CLIENT_PREFIX4}{i + 2}",
                                   f"{CLIENT_PREFIX6}{i + 2:x}")
                        for i, name in enumerate(clients)}
        self.hosts = {"node": self.node, **self.pods, **self.clients}
        self._created = []   # netns names, in creation order
        self._servers = {}   # pod name -> Popen

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self):
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise LabError(f"{tool} not found in PATH")
        cleanup_stale(self.prefix)
        try:
            self._build_node()
            for i, pod in enumerate(self.pods.values()):
                self._build_leaf(pod, f"vp{i}", "cbr0", POD_GATEWAY4, POD_GATEWAY6)
                # Let the bridge send a frame back out the port it came in by (see module doc).
                self.node_exec(["ip", "link", "set", "dev", f"vp{i}", "type", "bridge_slave",
                                "hairpin", "on"])
            for i, client in enumerate(self.clients.values()):
                self._build_leaf(client, f"vc{i}", "ext0", NODE_IP4, NODE_IP6)
            self._start_servers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Kill pod servers and delete all namespaces; safe to call twice.

        Tries everything, then raises LabError naming what could not be deleted.
        """
        for proc in self._servers.values():
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self._servers.clear()
        failed = []
        for netns in reversed(self._created):
            try:
                _delete_netns(netns)
            except LabError as e:
                failed.append(str(e))
        self._created.clear()
        if failed:
            raise LabError("teardown incomplete: " + "; ".join(failed))

    def _add_netns(self, host, sysctls):
        run(["ip", "netns", "add", host.netns])
        self._created.append(host.netns)
        self.exec_in(host.name, ["sysctl", "-q", "-w", "net.ipv4.icmp_ratemask=0",
                                 "net.ipv6.icmp.ratemask=", *sysctls])
        run(["ip", "-n", host.netns, "link", "set", "lo", "up"])

    def _build_node(self):
        n = self.node.netns
        self._add_netns(self.node, [
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.default.forwarding=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv6.conf.default.accept_dad=0",   # addresses usable at once
            # Built-in and already 1 in a new namespace; set anyway: the lab depends on it.
            "net.bridge.bridge-nf-call-iptables=1",
            "net.bridge.bridge-nf-call-ip6tables=1",
        ])
        for bridge, ip4, ip6 in (("cbr0", POD_GATEWAY4, POD_GATEWAY6),
                                 ("ext0", NODE_IP4, NODE_IP6)):
            run(["ip", "-n", n, "link", "add", bridge, "type", "bridge", "forward_delay", "0"])
            run(["ip", "-n", n, "addr", "add", f"{ip4}/24", "dev", bridge])
            run(["ip", "-n", n, "addr", "add", f"{ip6}/64", "dev", bridge, "nodad"])
            run(["ip", "-n", n, "link", "set", bridge, "up"])
        run(["ip", "-n", n, "link", "add", "svc0", "type", "veth", "peer", "name", "svc0-sink"])
        run(["ip", "-n", n, "link", "set", "svc0-sink", "up"])
        run(["ip", "-n", n, "link", "set", "svc0", "up"])
        for cidr in SERVICE_CIDRS:
            run(["ip", "-n", n, "route", "add", cidr, "dev", "svc0"])

    def _build_leaf(self, host, node_ifname, bridge, gw4, gw6):
        """A pod or client namespace with eth0, its veth peer node_ifname enslaved to bridge."""
        self._add_netns(host, ["net.ipv6.conf.default.accept_dad=0"])
        n, h = self.node.netns, host.netns
        run(["ip", "-n", n, "link", "add", node_ifname, "type", "veth",
             "peer", "name", "eth0", "netns", h])
        run(["ip", "-n", n, "link", "set", node_ifname, "master", bridge, "up"])
        run(["ip", "-n", h, "addr", "add", f"{host.ip4}/24", "dev", "eth0"])
        run(["ip", "-n", h, "addr", "add", f"{host.ip6}/64", "dev", "eth0", "nodad"])
        run(["ip", "-n", h, "link", "set", "eth0", "up"])
        run(["ip", "-n", h, "route", "add", "default", "via", gw4])
        run(["ip", "-6", "-n", h, "route", "add", "default", "via", gw6])

    def _start_servers(self):
        """Start podserver.py in every pod, then wait until each printed READY."""
        ports = ["--tcp", ",".join(map(str, self.tcp_ports)),
                 "--udp", ",".join(map(str, self.udp_ports))]
        for pod in self.pods.values():
            self._servers[pod.name] = subprocess.Popen(
                ["ip", "netns", "exec", pod.netns, PYTHON, "-I", str(PODSERVER), pod.name,
                 *ports], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        for name, proc in self._servers.items():
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                ready = sel.select(max(deadline - time.monotonic(), 0))
            line = proc.stdout.readline() if ready else ""
            if line.strip() != "READY":
                proc.kill()
                _, err = proc.communicate()
                raise LabError(f"podserver in {name} did not start: {line!r} {err.strip()}")

    # --- running things --------------------------------------------------------------------

    def netns(self, name):
        """Real namespace name of a host ("node", a pod or a client). KeyError if unknown."""
        return self.hosts[name].netns

    def exec_in(self, name, argv, *, input=None, timeout=30, check=True):
        """Run argv inside host name's namespace; return the CompletedProcess (text mode).

        Raises KeyError for an unknown name and LabError on non-zero exit (unless
        check=False) or timeout.
        """
        return run(["ip", "netns", "exec", self.netns(name), *argv],
                   input=input, timeout=timeout, check=check)

    def node_exec(self, argv, **kwargs):
        """exec_in("node", argv, ...): e.g. node_exec(["svcctl", "apply", path])."""
        return self.exec_in("node", argv, **kwargs)

    def nft(self, ruleset, **kwargs):
        """Load ruleset text into the node namespace with ``nft -f -``; LabError if refused."""
        return self.node_exec(["nft", "-f", "-"], input=ruleset, **kwargs)

    def requests(self, from_name, addr, port, n, proto="tcp", timeout=2.0):
        """Make n sequential requests to addr:port from one process in from_name's namespace.

        Each request is a fresh connection (TCP) or socket (UDP), so each is a new conntrack
        entry and a new load-balancing decision. Returns n Results in order; a request that
        failed is a Result with its error, not an exception. Raises ValueError for bad
        arguments and LabError if the request process itself fails.
        """
        if proto not in ("tcp", "udp") or not 1 <= n <= MAX_REQUESTS or timeout <= 0:
            raise ValueError(f"bad request: proto={proto} n={n} timeout={timeout}")
        proc = self.exec_in(from_name, [PYTHON, "-I", "-c", _CLIENT,
                                        json.dumps([addr, port, proto, n, timeout])],
                            timeout=n * (timeout + 0.5) + 10)
        return [Result(**json.loads(line)) for line in proc.stdout.splitlines()]

    def datagram(self, from_name, addr, port, *, answer=True):
        """One UDP datagram to addr:port from source port 40053, so that every call from a host
        reuses one conntrack entry (a UDP client that keeps its socket). Returns the pod that
        answered; with ``answer=False`` it only sends (None). LabError when no answer came."""
        proc = self.exec_in(from_name, [PYTHON, "-I", "-c", _FIXED_PORT_CLIENT, json.dumps([addr, port, answer])])
        return proc.stdout.strip() or None

    def request(self, from_name, addr, port, proto="tcp", timeout=2.0):
        """One request; returns the server's reply dict, e.g. {"pod": "pod-a", "peer": ...}.

        Raises Rejected when actively refused (comes back at once), Timeout when nothing came
        back in time; both carry the Result as ``.result``.
        """
        result, = self.requests(from_name, addr, port, 1, proto=proto, timeout=timeout)
        if result.ok:
            return result.reply
        raise (Timeout if result.error == "timeout" else Rejected)(result)
