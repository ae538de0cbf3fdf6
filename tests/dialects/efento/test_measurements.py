"""The reference's rules for turning ProtoMeasurements into telemetry records."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dialects.efento.measurements import NoMeasurements, measurement_records, utc_text
from gateway.dialects.efento.schema import EfentoSchema

TS = 1_700_000_000


def measurements(
    schema: EfentoSchema, *channels: tuple[int, list[int]], base: int = 180, factor: int = 0,
    start_point: int = 0, **fields: Any,
) -> Any:
    message: Any = schema.measurements(**{
        "serial_num": (1234).to_bytes(4, "big"), "cloud_token": "tok", "battery_status": True,
        "measurement_period_base": base, "measurement_period_factor": factor,
        "next_transmission_at": TS + 600, "signal": 20, **fields,
    })
    for kind, offsets in channels:
        message.channels.add(
            type=kind, timestamp=TS, start_point=start_point, sample_offsets=offsets
        )
    return message


def test_two_continuous_channels(schema: EfentoSchema) -> None:
    """Samples i of each channel share the record at ts + i·base·factor, with the common keys."""
    records = measurement_records(
        measurements(schema, (1, [223, 224]), (2, [20, 30]), factor=5)
    )
    assert records == [
        (TS * 1000, {
            "serial": "000004D2", "battery": "ok", "signal": 20,
            "next_transmission_at": utc_text(TS + 600), "measured_at": utc_text(TS),
            "temperature_1": 22.3, "humidity_2": 20.0,
            "measurement_interval_1": 900, "measurement_interval_2": 900,
        }),
        ((TS + 900) * 1000, {
            "serial": "000004D2", "battery": "ok", "signal": 20,
            "next_transmission_at": utc_text(TS + 600), "measured_at": utc_text(TS + 900),
            "temperature_1": 22.4, "humidity_2": 30.0,
            "measurement_interval_1": 900, "measurement_interval_2": 900,
        }),
    ]


def test_utc_text_is_the_references_format() -> None:
    """Times are written yyyy-MM-dd HH:mm:ss UTC."""
    assert utc_text(TS) == "2023-11-14 22:13:20 UTC"


@pytest.mark.parametrize(
    "kind, offset, expected",
    [
        (1, 223, {"temperature_1": 22.3}),
        (2, 20, {"humidity_1": 20.0}),
        (3, 1013, {"pressure_1": 101.3}),
        (4, 500, {"pressure_diff_1": 500.0}),
        (6, 151, {"iaq_1": 50, "iaq_metadata_1": 1}),
        (8, 300, {"pulse_cnt_1": 300.0}),
        (9, 1200, {"watt_hour_1": 1200.0}),
        (10, 1050, {"pulse_counter_water_1": 1050.0}),
        (11, -35, {"soil_moisture_1": -35.0}),
        (12, 7, {"co_gas_1": 7.0}),
        (13, 8, {"no2_gas_1": 8.0}),
        (14, 125, {"h2s_gas_1": 1.25}),
        (15, 500, {"ambient_light_1": 50.0}),
        (16, 11, {"pm_1_0_1": 11.0}),
        (17, 12, {"pm_2_5_1": 12.0}),
        (18, 13, {"pm_10_0_1": 13.0}),
        (19, 455, {"noise_level_1": 45.5}),
        (20, 14, {"nh3_gas_1": 14.0}),
        (21, 15, {"ch4_gas_1": 15.0}),
        (22, 200000, {"high_pressure_1": 200000.0}),
        (23, 1500, {"distance_mm_1": 1500.0}),
        (25, 2502, {"water_cnt_acc_1": 625, "water_cnt_acc_metadata_1": 2}),
        (26, 451, {"co2_gas_1": 150, "co2_gas_metadata_1": 1}),
        (27, 525, {"humidity_relative_1": 52.5}),
        (28, 110, {"static_iaq_1": 36, "static_iaq_metadata_1": 2}),
        (29, 450, {"co2_1": 150, "co2_metadata_1": 0}),
        (30, 220, {"breath_voc_1": 73, "breath_voc_metadata_1": 1}),
        (32, 80, {"percentage_1": 0.8}),
        (33, 2400, {"voltage_1": 240.0}),
        (34, 550, {"current_1": 5.5}),
        (36, 1201, {"pulse_cnt_acc_1": 300, "pulse_cnt_acc_metadata_1": 1}),
        (38, 400, {"elec_meter_acc_1": 100, "elec_meter_acc_metadata_1": 0}),
        (40, 1763, {"pulse_cnt_acc_wide_1": 440, "pulse_cnt_acc_wide_metadata_1": 3}),
        (41, 275, {"current_precise_1": 0.275}),
        (43, 4700, {"resistance_1": 4700.0}),
    ],
)
def test_continuous_type_scaling(
    schema: EfentoSchema, kind: int, offset: int, expected: dict[str, Any]
) -> None:
    """Each continuous type is recorded under its key with its resolution (and metadata)."""
    ((ts, values),) = measurement_records(measurements(schema, (kind, [offset])))
    assert ts == TS * 1000
    assert {k: v for k, v in values.items() if k.endswith("_1")} == {
        **expected, "measurement_interval_1": 180,
    }


def test_start_point_is_added_to_each_offset(schema: EfentoSchema) -> None:
    """A continuous sample is start_point + offset."""
    records = measurement_records(measurements(schema, (1, [3, -5]), start_point=220))
    assert [values["temperature_1"] for _, values in records] == [22.3, 21.5]


def test_sensor_error_codes_are_skipped_in_place(schema: EfentoSchema) -> None:
    """An offset in the error range records nothing, and the next sample keeps its own time."""
    records = measurement_records(
        measurements(schema, (1, [223, 8355840, 8388607, 225]), factor=1)
    )
    assert [(ts, values["temperature_1"]) for ts, values in records] == [
        (TS * 1000, 22.3), ((TS + 3 * 180) * 1000, 22.5),
    ]


@pytest.mark.parametrize(
    "major, major_value, minor, minor_value, key, total",
    [
        (25, 625 * 4, 24, 15 * 6, "water_cnt_acc_total_2", 625 * 100 + 15),
        (36, 300 * 4, 35, 10 * 6, "pulse_cnt_acc_total_2", 300 * 1000 + 10),
        (38, 100 * 4, 37, 12 * 6, "elec_meter_acc_total_2", 100 * 1000 + 12),
        (40, 440 * 4, 39, 13 * 6, "pulse_cnt_acc_wide_total_2", 440 * 1_000_000 + 13),
    ],
)
def test_accumulating_counter_pairs_make_a_total(
    schema: EfentoSchema, major: int, major_value: int, minor: int, minor_value: int,
    key: str, total: int,
) -> None:
    """A minor channel naming major channel 1 (value % 6 = 0) turns the major into a total."""
    message = measurements(schema, (major, [major_value]), (minor, [minor_value]))
    ((_, values),) = measurement_records(message)
    assert values[key] == total
    prefix = key.removesuffix("total_2")
    assert f"{prefix}1" not in values
    assert values[f"{prefix}metadata_1"] == 0


def test_binary_sensor_same_state_twice_is_one_record(schema: EfentoSchema) -> None:
    """OK/alarm [1, 1] is one ALARM at the channel's timestamp, over a period of base·14."""
    ((ts, values),) = measurement_records(measurements(schema, (5, [1, 1])))
    assert ts == TS * 1000
    assert (values["ok_alarm_1"], values["measurement_interval_1"]) == ("ALARM", 180 * 14)


@pytest.mark.parametrize(
    "kind, key, positive, negative",
    [
        (5, "ok_alarm_1", "ALARM", "OK"),
        (7, "flooding_1", "WATER_DETECTED", "OK"),
        (42, "output_control_1", "ON", "OFF"),
    ],
)
def test_binary_sensor_changes_are_stamped_by_offset(
    schema: EfentoSchema, kind: int, key: str, positive: str, negative: str
) -> None:
    """Offsets [1, -10]: the positive state at ts, the negative one at ts + 9 s."""
    records = measurement_records(measurements(schema, (kind, [1, -10]), factor=1))
    assert [(ts, values[key]) for ts, values in records] == [
        (TS * 1000, positive), ((TS + 9) * 1000, negative),
    ]
    assert records[0][1]["measurement_interval_1"] == 180


def test_binary_sensor_keeps_changes_after_a_repeated_state(schema: EfentoSchema) -> None:
    """[1, 3, -5, 8]: a repeated state is dropped and reading goes on (the reference stops)."""
    records = measurement_records(measurements(schema, (5, [1, 3, -5, 8])))
    assert [(ts, values["ok_alarm_1"]) for ts, values in records] == [
        (TS * 1000, "ALARM"), ((TS + 4) * 1000, "OK"), ((TS + 7) * 1000, "ALARM"),
    ]


def test_mixed_channels_take_their_own_default_factor(schema: EfentoSchema) -> None:
    """With factor 0 a continuous channel's period is base, a binary one's base·14."""
    records = measurement_records(measurements(schema, (1, [223, 224]), (7, [-1])))
    assert [ts for ts, _ in records] == [TS * 1000, (TS + 180) * 1000]
    first = records[0][1]
    assert (first["measurement_interval_1"], first["measurement_interval_2"]) == (180, 180 * 14)
    assert first["flooding_2"] == "OK"
    assert "measurement_interval_2" not in records[1][1]


def test_low_battery_and_unknown_types(schema: EfentoSchema) -> None:
    """Battery false is "low"; channels without a sensor or of an unknown type add nothing."""
    message = measurements(schema, (0, [5]), (99, [5]), (1, [200]), battery_status=False)
    ((_, values),) = measurement_records(message)
    assert values["battery"] == "low"
    assert values["temperature_3"] == 20.0
    assert not any(key.endswith(("_1", "_2")) for key in values)


@pytest.mark.parametrize("channels", [(), ((1, []),), ((1, [8355841]),)])
def test_nothing_to_record_is_refused(
    schema: EfentoSchema, channels: tuple[tuple[int, list[int]], ...]
) -> None:
    """No channels, or channels without a sample, raise NoMeasurements."""
    with pytest.raises(NoMeasurements):
        measurement_records(measurements(schema, *channels))
