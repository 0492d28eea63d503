"""Tiny echo-who-I-am server run inside each lab pod namespace.

Usage: podserver.py NAME --tcp PORT[,PORT...] --udp PORT[,PORT...]

Listens on every given TCP and UDP port, on IPv4 (0.0.0.0) and IPv6 (::, v6-only) separately so
that peers are reported in their own family (no ::ffff:a.b.c.d mapped addresses). Every TCP
connection and every UDP datagram gets exactly one line of JSON:

    {"pod": NAME, "peer": "<source address the server saw>", "port": <local port>}

after which the TCP connection is closed. The peer address is what makes NAT visible to tests:
a masqueraded connection shows the node's address, an un-NATed one the client's.

Prints "READY" on stdout once every socket is bound and listening; the lab waits for that line.
Binding failures (port in use, bad port) make it exit non-zero with a traceback on stderr before
READY. Runs until killed.
"""

import argparse
import json
import selectors
import socket


def ports(text):
    """Parse "80,8080" into [80, 8080]; an empty string means no ports."""
    return [int(p) for p in text.split(",") if p]


def open_sockets(tcp_ports, udp_ports):
    """Return a list of (socket, kind) for every port, family and protocol."""
    socks = []
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        for kind, ptype, port_list in (("tcp", socket.SOCK_STREAM, tcp_ports),
                                       ("udp", socket.SOCK_DGRAM, udp_ports)):
            for port in port_list:
                s = socket.socket(family, ptype)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
                if kind == "tcp":
                    s.listen(128)
                s.setblocking(False)
                socks.append((s, kind))
    return socks


def reply(name, peer, port):
    return (json.dumps({"pod": name, "peer": peer, "port": port}) + "\n").encode()


def serve(name, socks):
    sel = selectors.DefaultSelector()
    for s, kind in socks:
        sel.register(s, selectors.EVENT_READ, kind)
    while True:
        for key, _ in sel.select():
            s, kind = key.fileobj, key.data
            port = s.getsockname()[1]
            try:
                if kind == "tcp":
                    conn, peer = s.accept()
                    with conn:
                        conn.settimeout(1)
                        conn.sendall(reply(name, peer[0], port))
                else:
                    _, peer = s.recvfrom(2048)
                    s.sendto(reply(name, peer[0], port), peer)
            except OSError:
                # A peer that vanished (reset, unreachable) must not stop the server.
                continue


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--tcp", type=ports, default=[])
    parser.add_argument("--udp", type=ports, default=[])
    args = parser.parse_args()
    socks = open_sockets(args.tcp, args.udp)
    print("READY", flush=True)
    serve(args.name, socks)


if __name__ == "__main__":
    main()
