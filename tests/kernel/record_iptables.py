"""Record what iptables-save prints, for the iptables tests that run without root
(tests/fake_iptables.py, tests/test_iptables_decide.py). Run as root after a change to the
layout:

    .venv/bin/python tests/kernel/record_iptables.py

Each recording is made in a throwaway network namespace, with iptables-nft and with
iptables-legacy (one JSON file per scenario: flavour -> family -> iptables-save output):
- iptables-busy.json: a node where other tools have rules: Docker's (DOCKER chains, jumps from
  PREROUTING, OUTPUT and FORWARD, its MASQUERADE, FORWARD policy DROP) and kube-proxy's
  (KUBE-SERVICES and a KUBE-SVC chain, hooked at the top as kube-proxy does);
- iptables-web.json: the same node after `svcctl apply --backend iptables examples/web.yaml`
  (node-1, cluster CIDR 10.244.0.0/16);
- iptables-refused.json: inputs iptables-restore refuses (a jump to a chain that does not exist,
  an unknown match, deleting a chain another rule still uses) and its messages, per flavour.
"""

from __future__ import annotations

import json
import subprocess

from record import EXAMPLE, HERE, NODE, SVCCTL

from svcctl.kernel import in_throwaway_netns
FLAVOURS = ("nft", "legacy")
FAMILIES = ("iptables", "ip6tables")

# Other tools' rules, as `iptables ARGS` commands (each also given to ip6tables, with the
# addresses of its family).
FOREIGN = [
    "-t nat -N DOCKER",
    "-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    "-t nat -A OUTPUT ! -d {loopback} -m addrtype --dst-type LOCAL -j DOCKER",
    "-t nat -A POSTROUTING -s {docker} ! -o docker0 -j MASQUERADE",
    "-t nat -A DOCKER -i docker0 -j RETURN",
    "-t filter -N DOCKER-USER",
    "-t filter -A DOCKER-USER -j RETURN",
    "-t filter -A FORWARD -j DOCKER-USER",
    "-t filter -P FORWARD DROP",
    "-t nat -N KUBE-SERVICES",
    "-t nat -N KUBE-SVC-NPX46M4PTMTKRN6Y",
    "-t nat -A KUBE-SVC-NPX46M4PTMTKRN6Y -p tcp -j DNAT --to-destination {apiserver}",
    "-t nat -A KUBE-SERVICES -d {kubernetes} -p tcp -m comment --comment default/kubernetes:https -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y",
    "-t nat -I PREROUTING 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    "-t nat -I OUTPUT 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
]
ADDRESSES = {
    "iptables": {"loopback": "127.0.0.0/8", "docker": "172.17.0.0/16", "kubernetes": "10.96.0.1/32", "apiserver": "192.168.50.1:6443"},
    "ip6tables": {"loopback": "::1/128", "docker": "fd00:172:17::/64", "kubernetes": "fd00:10:96::1/128", "apiserver": "[fd00:50::1]:6443"},
}
REFUSED = {
    "missing-chain": "*nat\n:SVCCTL-SVC-AAAAAAAAAAAAAAAA - [0:0]\n-A SVCCTL-SVC-AAAAAAAAAAAAAAAA -j SVCCTL-SEP-BBBBBBBBBBBBBBBB\nCOMMIT\n",
    "unknown-match": "*nat\n:SVCCTL-SVC-AAAAAAAAAAAAAAAA - [0:0]\n-A SVCCTL-SVC-AAAAAAAAAAAAAAAA -m bogus -j RETURN\nCOMMIT\n",
    "chain-in-use": "*nat\n:SVCCTL-SERVICES - [0:0]\n-X SVCCTL-SERVICES\nCOMMIT\n",
}


def sh(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=check)


def saves(flavour: str) -> dict[str, str]:
    return {f: sh(f"{f}-{flavour}-save").stdout for f in FAMILIES}


def record_node(flavour: str) -> dict[str, dict[str, str]]:
    def work() -> dict[str, dict[str, str]]:
        for family in FAMILIES:
            for command in FOREIGN:
                sh("sh", "-c", f"{family}-{flavour} {command.format(**ADDRESSES[family])}")
        busy = saves(flavour)
        sh(SVCCTL, "apply", "--backend", "iptables", "--iptables-mode", flavour, EXAMPLE, *NODE)
        return {"busy": busy, "web": saves(flavour)}

    return in_throwaway_netns(work)


def record_refusals(flavour: str) -> dict[str, dict[str, str]]:
    def work() -> dict[str, dict[str, str]]:
        sh(SVCCTL, "apply", "--backend", "iptables", "--iptables-mode", flavour, EXAMPLE, *NODE)
        out = {}
        for name, script in REFUSED.items():
            done = sh(f"iptables-{flavour}-restore", "--noflush", stdin=script, check=False)
            assert done.returncode != 0, name
            out[name] = {"script": script, "error": done.stderr}
        return out

    return in_throwaway_netns(work)


def main() -> None:
    nodes = {f: record_node(f) for f in FLAVOURS}
    files = {
        "iptables-busy.json": {f: nodes[f]["busy"] for f in FLAVOURS},
        "iptables-web.json": {f: nodes[f]["web"] for f in FLAVOURS},
        "iptables-refused.json": {f: record_refusals(f) for f in FLAVOURS},
    }
    for name, data in files.items():
        (HERE / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote tests/kernel/{name}")


if __name__ == "__main__":
    main()
