"""The seed projects' APIs as thin adapters over :class:`peerscope.Monitor`.

- :mod:`peerscope.compat.avatar`: the avatar server's ``PerformanceMonitor``.
- :mod:`peerscope.compat.lanrage`: LANrage's observability (``MetricsCollector`` and its
  ``ConnectionQualityMonitor``), its modules mirrored (``.metrics``).

Every figure they report comes from the Monitor; the adapters only rename and reshape. The
submodules are not imported here, so importing one seed's API never loads the other.
"""
