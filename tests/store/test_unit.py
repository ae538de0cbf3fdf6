"""
Units of work as values: operations check and snapshot their data when built.
"""

from __future__ import annotations

import pytest

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import AttributeScope, Device
from gateway.store.unit import (
    AppendTelemetry,
    CreateDevice,
    DeleteAttributes,
    DeleteDevice,
    SetAttributes,
    UnitOfWork,
)

SHARED = AttributeScope.SHARED


def test_values_snapshot_as_json_text() -> None:
    """An operation holds its values as JSON text, so later changes to them do not leak in."""
    value = {"x": [1]}
    op = SetAttributes("d1", SHARED, {"k": value}, 7)
    value["x"].append(2)
    assert op.values == (("k", '{"x":[1]}'),)
    records = [(5, {"t": 2.5})]
    telemetry = AppendTelemetry("d1", records)
    records.clear()
    assert telemetry.records == ((5, (("t", "2.5"),)),)


def test_bad_data_refused_when_built() -> None:
    """Building an operation from data no backend can store raises InvalidArgument at once."""
    with pytest.raises(InvalidArgument):
        SetAttributes("d1", SHARED, {"k": float("nan")}, 1)
    with pytest.raises(InvalidArgument):
        CreateDevice(Device("d1", "one", enabled=1))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        DeleteDevice(7)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        AppendTelemetry("d1", [(True, {"t": 1})])


def test_delete_keys_deduplicated_in_order() -> None:
    """Keys to delete keep their first order and lose repeats."""
    assert DeleteAttributes("d1", SHARED, ["b", "a", "b"]).keys == ("b", "a")


def test_units_compose_in_order() -> None:
    """then and + append operations after the unit's own, leaving both units unchanged."""
    a, b, c = DeleteDevice("a"), DeleteDevice("b"), DeleteDevice("c")
    first = UnitOfWork.of(a)
    assert first.then(b, c).operations == (a, b, c)
    assert (first + UnitOfWork.of(c)).operations == (a, c)
    assert first.operations == (a,)
    assert UnitOfWork().operations == ()
