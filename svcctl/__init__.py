"""svcctl: Kubernetes Services compiled into nftables rules, without a cluster."""
