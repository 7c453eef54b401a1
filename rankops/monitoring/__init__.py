"""Monitoring: Prometheus metrics of the serving path, alert rules and dashboards (``assets/``)."""
