"""``svcctl run``, the node agent: keeps a node's rules in step with a source of manifests.

source (changes) -> state (objects accepted, per origin) -> planner (Services reached, their
plan) -> the back end's Syncer (what changed, to the kernel); reconcile says when, loop runs it,
health and metrics say how it goes. docs/cli.md (svcctl run) is the user's side of it.
"""
