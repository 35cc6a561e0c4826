"""Grafana dashboards as code: the city overview, one public dashboard per neighbourhood and the
operator's dashboard, generated from the node registry with grafana-foundation-sdk, plus the
provisioning files and the publisher (``commons dashboards build|publish``).
"""
