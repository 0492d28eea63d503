"""The same cluster in kube-proxy's nftables layout (v1.36 and later), for the benchmarks only.

Rendered from svcctl's plan, in the rule shapes kube-proxy's nftables proxier writes (read in
its source; not its code): a table ``kube-proxy`` per family with the named sets and maps
``cluster-ips``, ``service-ips``, ``service-nodeports``, ``no-endpoint-services``,
``no-endpoint-nodeports``, ``firewall-ips``; base chains jumping to ``services``,
``masquerading``, the endpoint and cluster-IP checks; one ``service-`` chain per Service port
holding a single ``dnat ... to numgen random mod N map { ... }`` rule (an anonymous map per
chain, no endpoint chains: v1.36's layout), and ``external-`` chains for external traffic. It is
what the kernel loads for kube-proxy, not a working replacement: load time is what it is for.
"""

from __future__ import annotations

import base64
import hashlib

from svcctl.plan.model import Action, EndpointGroup, ExternalRoute, FamilyPlan, Plan


def _hash(name: str) -> str:
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]


def _chain(prefix: str, ident: str) -> str:
    return f"{prefix}-{_hash(ident)}-{ident}"


def _target(address: str, port: int, family: str) -> str:
    return f"{address} . {port}" if family == "ip" else f"{address} . {port}"


def _family(fp: FamilyPlan) -> str:
    f = "ip" if fp.version == 4 else "ip6"
    a = "ipv4_addr" if fp.version == 4 else "ipv6_addr"
    key = f"{f} daddr . meta l4proto . th dport"
    lines = [
        f"table {f} kube-proxy {{",
        '\tcomment "rules for kube-proxy"',
        f"\tset cluster-ips {{ type {a}; }}",
        f"\tmap service-ips {{ type {a} . inet_proto . inet_service : verdict; }}",
        "\tmap service-nodeports { type inet_proto . inet_service : verdict; }",
        f"\tmap no-endpoint-services {{ type {a} . inet_proto . inet_service : verdict; }}",
        "\tmap no-endpoint-nodeports { type inet_proto . inet_service : verdict; }",
        f"\tmap firewall-ips {{ type {a} . inet_proto . inet_service : verdict; }}",
        "\tchain filter-prerouting-pre-dnat { type filter hook prerouting priority dstnat - 10; policy accept; ct state new jump firewall-check; }",
        "\tchain filter-output-pre-dnat { type filter hook output priority -110; policy accept; ct state new jump firewall-check; }",
        "\tchain filter-input { type filter hook input priority filter; policy accept; ct state new jump nodeport-endpoints-check; ct state new jump service-endpoints-check; }",
        "\tchain filter-forward { type filter hook forward priority filter; policy accept; ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }",
        "\tchain filter-output { type filter hook output priority filter; policy accept; ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }",
        "\tchain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }",
        "\tchain nat-output { type nat hook output priority -100; policy accept; jump services; }",
        "\tchain nat-postrouting { type nat hook postrouting priority srcnat; policy accept; jump masquerading; }",
        f"\tchain firewall-check {{ {key} vmap @firewall-ips; }}",
        f"\tchain service-endpoints-check {{ {key} vmap @no-endpoint-services; }}",
        f"\tchain nodeport-endpoints-check {{ {f} daddr != {'127.0.0.0/8' if f == 'ip' else '::1'} meta l4proto . th dport vmap @no-endpoint-nodeports; }}",
        f"\tchain cluster-ips-check {{ {f} daddr @cluster-ips reject; }}",
        "\tchain reject-chain { reject; }",
        "\tchain masquerading { meta mark & 0x00004000 == 0 return; meta mark set meta mark ^ 0x00004000; masquerade fully-random; }",
        "\tchain mark-for-masquerade { meta mark set meta mark | 0x00004000; }",
        "\tchain services {",
        f"\t\t{f} daddr @cluster-ips jump mark-for-masquerade",
        f"\t\t{key} vmap @service-ips",
        f"\t\tfib daddr type local {f} daddr != {'127.0.0.0/8' if f == 'ip' else '::1'} meta l4proto . th dport vmap @service-nodeports",
        "\t}",
    ]
    names: dict[int, str] = {}

    def group(g: EndpointGroup) -> str:
        name = names.get(id(g))
        if name is None:
            proto = g.port.protocol.value.lower()
            name = names[id(g)] = _chain("local" if g.local else "service", g.port.ident)
            eps = g.endpoints
            if len(eps) == 1:
                rule = f"meta l4proto {proto} dnat to {eps[0].address if f == 'ip' else f'[{eps[0].address}]'}:{eps[0].port}"
            else:
                elements = ", ".join(f"{i} : {_target(e.address, e.port, f)}" for i, e in enumerate(eps))
                rule = f"meta l4proto {proto} dnat {f} addr . port to numgen random mod {len(eps)} map {{ {elements} }}"
            lines.extend([f"\tchain {name} {{", f"\t\t{rule}", "\t}"])
        return name

    def route(r: ExternalRoute) -> str:
        name = names.get(id(r))
        if name is None:
            name = names[id(r)] = _chain("external", r.port.ident)
            body = []
            if not r.local_policy:
                body.append("jump mark-for-masquerade")
            if r.pods_to is not None:
                body.append(f"{f} saddr @cluster-cidrs goto {group(r.pods_to)}")
            if r.node_to is not None:
                body.append("fib saddr type local jump mark-for-masquerade")
                body.append(f"fib saddr type local goto {group(r.node_to)}")
            if r.then_to is not None:
                body.append(f"goto {group(r.then_to)}")
            lines.extend([f"\tchain {name} {{", *(f"\t\t{b}" for b in body), "\t}"])
        return name

    def verdict(t: EndpointGroup | ExternalRoute) -> str:
        return f"goto {route(t) if isinstance(t, ExternalRoute) else group(t)}"

    elements: dict[str, list[str]] = {"service-ips": [], "service-nodeports": [], "no-endpoint-services": [], "no-endpoint-nodeports": []}
    for port in fp.ports:
        for d, t in port.service_ips:
            elements["service-ips"].append(f"{d.address} . {d.protocol.value.lower()} . {d.port} : {verdict(t)}")
        for n, t in port.node_ports:
            elements["service-nodeports"].append(f"{n.protocol.value.lower()} . {n.port} : {verdict(t)}")
        for d, a in port.no_endpoint_ips:
            elements["no-endpoint-services"].append(f"{d.address} . {d.protocol.value.lower()} . {d.port} : {'goto reject-chain' if a is Action.REJECT else 'drop'}")
        for n, a in port.no_endpoint_node_ports:
            elements["no-endpoint-nodeports"].append(f"{n.protocol.value.lower()} . {n.port} : {'goto reject-chain' if a is Action.REJECT else 'drop'}")
    lines.insert(2, f"\tset cluster-cidrs {{ type {a}; flags interval; }}")
    lines.append("}")
    for name, items in (("cluster-ips", list(fp.cluster_ips)), *elements.items(), ("cluster-cidrs", list(fp.cluster_cidrs))):
        for k in range(0, len(items), 1000):
            lines.append(f"add element {f} kube-proxy {name} {{ {', '.join(items[k:k + 1000])} }}")
    return "\n".join(lines) + "\n"


def render(plan: Plan) -> str:
    return "".join(_family(fp) for fp in plan.families)
