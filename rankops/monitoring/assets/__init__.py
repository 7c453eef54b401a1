"""Monitoring assets shipped with the package: Prometheus alert rules and a Grafana dashboard."""
