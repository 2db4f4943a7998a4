"""Probing remote hosts: TWAMP Light (RFC 5357) over UDP, ICMP echo and TCP connect time.

None of it imports the Monitor: ``twamp`` and ``reflector`` know nothing of it, and
``prober`` feeds any :class:`peerscope.probe.sink.ProbeSink`, which the Monitor is.
"""
