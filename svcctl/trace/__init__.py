"""``svcctl trace``: what svcctl's rules do to a new connection, read from the plan the rules are
made from (path), written for people and scripts (render), and checked against the kernel
(compare; the back ends' probes run the packet through their real rules)."""

from .packet import Packet, packet
from .path import Candidate, Trace, Verdict, trace

__all__ = ["Candidate", "Packet", "Trace", "Verdict", "packet", "trace"]
