"""Probing remote hosts: TWAMP Light (RFC 5357) over UDP, ICMP echo and TCP connect time.

``twamp`` and ``reflector`` know nothing of the Monitor; ``prober`` feeds one.
"""
