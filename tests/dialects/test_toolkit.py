"""
The toolkit's per-device observed-resource table: one resource per device
while it has observers.
"""

from __future__ import annotations

from gateway.dialects.toolkit import ObservedDeviceResource, ObservedResources
from gateway.service.build import Services


def test_table_keeps_the_first_observed_resource(services: Services) -> None:
    """A device's first observed resource is kept; another neither replaces nor drops it."""
    table = ObservedResources()
    first = ObservedDeviceResource(services.devices, "d1", table)
    second = ObservedDeviceResource(services.devices, "d1", table)
    assert table.get("d1", lambda: second) is second
    table.add(first)
    table.add(second)
    assert table.get("d1", lambda: second) is first
    table.discard(second)
    assert table.get("d1", lambda: second) is first
    table.discard(first)
    assert table.get("d1", lambda: second) is second
