"""The shipped Efento schema compiles and keeps the sensor's field numbers."""

from __future__ import annotations

from gateway.dialects.efento.schema import EfentoSchema


def _numbers(message_class: type, *names: str) -> list[int]:
    fields = message_class.DESCRIPTOR.fields_by_name  # type: ignore[attr-defined]
    return [fields[name].number for name in names]


def test_cloud_token_numbers_are_the_sensors(schema: EfentoSchema) -> None:
    """The cloud token is field 16 of measurements and device info, 24 of the configuration."""
    assert _numbers(schema.measurements, "cloud_token") == [16]
    assert _numbers(schema.device_info, "cloud_token") == [16]
    assert _numbers(schema.config, "cloud_token") == [24]


def test_measurement_fields_keep_their_numbers(schema: EfentoSchema) -> None:
    """ProtoMeasurements and ProtoChannel keep the published numbers (factor 8, offsets 5)."""
    assert _numbers(
        schema.measurements, "serial_num", "battery_status", "measurement_period_base",
        "channels", "next_transmission_at", "transfer_reason", "signal",
        "measurement_period_factor", "hash",
    ) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    channel = schema.measurements.DESCRIPTOR.fields_by_name["channels"].message_type  # type: ignore[attr-defined]
    assert [channel.fields_by_name[f].number for f in
            ("type", "timestamp", "start_point", "sample_offsets")] == [1, 2, 4, 5]


def test_known_bytes_decode(schema: EfentoSchema) -> None:
    """Bytes written by hand in the wire format decode to the fields they name."""
    # channels (4): type 1, timestamp 100, sample_offsets packed sint32 [1, -1].
    channel = bytes([0x08, 0x01, 0x10, 0x64, 0x2A, 0x02, 0x02, 0x01])
    data = bytes([0x22, len(channel)]) + channel + bytes([0x82, 0x01, 0x01]) + b"t"
    message = schema.measurements.FromString(data)
    assert message.cloud_token == "t"  # type: ignore[attr-defined]
    (parsed,) = message.channels  # type: ignore[attr-defined]
    assert (parsed.type, parsed.timestamp, list(parsed.sample_offsets)) == (1, 100, [1, -1])
