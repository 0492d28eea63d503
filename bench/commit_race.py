"""Measurement: can a packet in flight during an nftables commit miss the rules it should run?

    sudo .venv/bin/python bench/commit_race.py [--commits 600]

In a throwaway network namespace, two C senders (bench/udp_flood.c) flood UDP to 10.9.9.9:80
through an output chain that does ``ip daddr . udp dport vmap @m`` then counts what falls
through. Each element of ``m`` jumps to a chain whose only rule accepts, so nothing should ever
fall through. Meanwhile nft commits, one after another, one of three ways of moving the element
to another chain:

- ``one commit``: add a new chain, re-point the element at it, delete the old chain, in one
  transaction (what svcctl did before, and kube-proxy's nftables mode does);
- ``two commits``: the new chain in a commit of its own first, then the rest (svcctl now:
  svcctl.nftables.transaction.stages);
- ``existing chains``: re-point the element between two chains that stay.

Measured on Linux 6.18 (2 cores), 400 to 1,000 moves per way: one commit let 17 to 77 packets
through per run, the other two ways none (docs/kernel-notes.md, 1.5). Needs root, iproute2, nft and a C compiler. A script, not
a test: it counts a race.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS = f"svcbench-race-{os.getpid()}"
SETUP = """
table ip race {
  map m { type ipv4_addr . inet_service : verdict; }
  chain c0 { accept; }
  chain s1 { accept; }
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr . udp dport vmap @m
    ip daddr 10.9.9.9 counter
  }
}
add element ip race m { 10.9.9.9 . 80 : jump c0 }
"""
REPOINT = "delete element ip race m {{ 10.9.9.9 . 80 }}\nadd element ip race m {{ 10.9.9.9 . 80 : jump {} }}\n"


def commits(mode: str, n: int) -> list[str]:
    """The nft scripts, one per commit, that move the element n times."""
    out = []
    for i in range(1, n + 1):
        new, old = f"c{i}", f"c{i - 1}"
        if mode == "one commit":
            out.append(f"add chain ip race {new} {{ accept; }}\n" + REPOINT.format(new) + f"delete chain ip race {old}\n")
        elif mode == "two commits":
            out += [f"add chain ip race {new} {{ accept; }}\n", REPOINT.format(new) + f"delete chain ip race {old}\n"]
        else:
            out.append(REPOINT.format("s1" if i % 2 else "c0"))
    return out


def netns(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", NS, *argv], check=True, capture_output=True, text=True, **kwargs)


def measure(mode: str, n: int, flood: Path) -> int:
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        for cmd in ("link add d0 type veth peer name d1", "link set d0 up", "link set d1 up",
                    "addr add 10.9.0.1/16 dev d0", "neigh add 10.9.9.9 lladdr 02:00:00:00:00:01 dev d0"):
            subprocess.run(["ip", "-n", NS, *cmd.split()], check=True)
        netns("nft", "-f", "-", input=SETUP)
        senders = [subprocess.Popen(["ip", "netns", "exec", NS, str(flood), "10.9.9.9", "80", "100000000000"]) for _ in range(2)]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for i, script in enumerate(commits(mode, n)):
                    path = Path(tmp, f"{i}.nft")
                    path.write_text(script)
                    netns("nft", "-f", str(path))
        finally:
            for s in senders:
                s.kill()
                s.wait()
        listed = netns("nft", "list", "chain", "ip", "race", "out").stdout
        return int(re.search(r"counter packets (\d+)", listed).group(1))
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=600, help="element moves per way (default 600)")
    args = ap.parse_args()
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    flood = out / "udp_flood"
    subprocess.run(["cc", "-O2", "-o", str(flood), str(HERE / "udp_flood.c")], check=True)
    for mode in ("one commit", "two commits", "existing chains"):
        print(f"{mode:16} {args.commits} moves: {measure(mode, args.commits, flood)} packets fell through", flush=True)


if __name__ == "__main__":
    main()
