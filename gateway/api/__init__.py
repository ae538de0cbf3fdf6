"""
The northbound HTTP API: a JSON API for operators and applications over the
service layer.  L{gateway.api.app.build_api} builds the twisted.web resource;
the route table it serves is also the source of the OpenAPI document.
"""

from gateway.api.app import build_api, build_routes

__all__ = ["build_api", "build_routes"]
