"""Outputs that hand the Monitor's figures to other systems (Prometheus: ``export.prometheus``)."""
