# -*- test-case-name: tests.dialects.efento.test_measurements -*-
"""
Telemetry from an Efento C{ProtoMeasurements}, by the reference's rules
(ThingsBoard's C{CoapEfentoTransportResource}).

Every record (one per timestamp, oldest first) carries C{serial} (the serial
number in upper-case hex), C{battery} (C{ok}/C{low}), C{measured_at} and
C{next_transmission_at} (C{yyyy-MM-dd HH:mm:ss UTC}), C{signal}, and for each
channel N (from 1) with a sample at that time, C{measurement_interval_N} (the
channel's period in seconds) and its value under C{<type>_N}.

 - Period: C{measurement_period_base} times C{measurement_period_factor}; a
   factor of 0 (firmware 5.x) counts as 1 for continuous sensors and 14 for
   binary ones.
 - Continuous sensors: sample i is C{start_point + offset}, scaled for its type,
   at the channel's timestamp + i periods; an offset in [8355840, 8388607] is a
   sensor error code and is skipped.  IAQ, CO2 and VOC values carry
   calibration metadata (C{value % 3}, under C{<type>_metadata_N}); the
   accumulating counters come as a major channel (C{value / 4}, status
   C{value % 4}) and a minor one (C{value / 6}, whose C{value % 6 + 1} names
   its major): the minor turns the pair into C{<counter>_total_N}.
 - Binary sensors: an offset's sign is the state (negative: OK, off), and
   C{|offset| - 1} the seconds after the channel's timestamp; only changes of
   state are kept.  (The reference stops reading the channel at the first
   repeated state, losing any later change; this keeps reading.)

The types the reference ignores (the gases, particulates, noise and
resistance of newer sensors) are read with the resolution the schema gives.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Union

import attrs

from gateway.domain.model import JSONValue, TelemetryRecord

__all__ = ["NoMeasurements", "measurement_records", "utc_text"]

#: Values to add to a record: (record, channel number, start_point + offset).
_Add = Callable[[dict[str, JSONValue], int, int], None]

#: Offsets in this range are sensor error codes, not samples.
_ERRORS = range(8355840, 8388607 + 1)


class NoMeasurements(ValueError):
    """The message holds no sample to record."""


def utc_text(seconds: int) -> str:
    """C{seconds} since the epoch as the reference writes it (C{yyyy-MM-dd HH:mm:ss UTC})."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _java_divmod(value: int, factor: int) -> tuple[int, int]:
    """Integer division and remainder as Java's C{/} and C{%} (towards zero)."""
    quotient = abs(value) // factor * (1 if value >= 0 else -1)
    return quotient, value - quotient * factor


def _scaled(prefix: str, divisor: int) -> _Add:
    def add(values: dict[str, JSONValue], channel: int, value: int) -> None:
        values[f"{prefix}{channel}"] = value / divisor

    return add


def _with_metadata(prefix: str, factor: int) -> _Add:
    def add(values: dict[str, JSONValue], channel: int, value: int) -> None:
        values[f"{prefix}{channel}"], values[f"{prefix}metadata_{channel}"] = _java_divmod(
            value, factor
        )

    return add


def _minor(prefix: str, major_resolution: int) -> _Add:
    def add(values: dict[str, JSONValue], channel: int, value: int) -> None:
        minor, index = _java_divmod(value, 6)
        major = values.pop(f"{prefix}{index + 1}", None)
        if isinstance(major, int):
            values[f"{prefix}total_{channel}"] = major * major_resolution + minor

    return add


@attrs.frozen
class _Binary:
    """A binary sensor's key prefix and its two states (negative offset first)."""

    prefix: str
    negative: str
    positive: str


#: How each continuous measurement type (by number) is recorded.
_CONTINUOUS: dict[int, _Add] = {
    1: _scaled("temperature_", 10),
    2: _scaled("humidity_", 1),
    3: _scaled("pressure_", 10),
    4: _scaled("pressure_diff_", 1),
    6: _with_metadata("iaq_", 3),
    8: _scaled("pulse_cnt_", 1),
    9: _scaled("watt_hour_", 1),
    10: _scaled("pulse_counter_water_", 1),
    11: _scaled("soil_moisture_", 1),
    12: _scaled("co_gas_", 1),
    13: _scaled("no2_gas_", 1),
    14: _scaled("h2s_gas_", 100),
    15: _scaled("ambient_light_", 10),
    16: _scaled("pm_1_0_", 1),
    17: _scaled("pm_2_5_", 1),
    18: _scaled("pm_10_0_", 1),
    19: _scaled("noise_level_", 10),
    20: _scaled("nh3_gas_", 1),
    21: _scaled("ch4_gas_", 1),
    22: _scaled("high_pressure_", 1),
    23: _scaled("distance_mm_", 1),
    24: _minor("water_cnt_acc_", 100),
    25: _with_metadata("water_cnt_acc_", 4),
    26: _with_metadata("co2_gas_", 3),
    27: _scaled("humidity_relative_", 10),
    28: _with_metadata("static_iaq_", 3),
    29: _with_metadata("co2_", 3),
    30: _with_metadata("breath_voc_", 3),
    32: _scaled("percentage_", 100),
    33: _scaled("voltage_", 10),
    34: _scaled("current_", 100),
    35: _minor("pulse_cnt_acc_", 1000),
    36: _with_metadata("pulse_cnt_acc_", 4),
    37: _minor("elec_meter_acc_", 1000),
    38: _with_metadata("elec_meter_acc_", 4),
    39: _minor("pulse_cnt_acc_wide_", 1_000_000),
    40: _with_metadata("pulse_cnt_acc_wide_", 4),
    41: _scaled("current_precise_", 1000),
    43: _scaled("resistance_", 1),
}

#: The binary measurement types (by number).
_BINARY = {
    5: _Binary("ok_alarm_", "OK", "ALARM"),
    7: _Binary("flooding_", "OK", "WATER_DETECTED"),
    42: _Binary("output_control_", "OFF", "ON"),
}

_Kind = Union[_Add, _Binary]


def measurement_records(message: Any) -> list[TelemetryRecord]:
    """The telemetry records of a C{ProtoMeasurements}; L{NoMeasurements} if it has none."""
    if not message.channels:
        raise NoMeasurements("the message has no channels")
    common: dict[str, JSONValue] = {
        "serial": bytes(message.serial_num).hex().upper(),
        "battery": "ok" if message.battery_status else "low",
        "next_transmission_at": utc_text(message.next_transmission_at),
        "signal": message.signal,
    }
    by_ts: dict[int, dict[str, JSONValue]] = {}

    def record(ts_ms: int) -> dict[str, JSONValue]:
        found = by_ts.get(ts_ms)
        if found is None:
            found = by_ts[ts_ms] = {**common, "measured_at": utc_text(ts_ms // 1000)}
        return found

    for index, channel in enumerate(message.channels):
        kind: _Kind | None = _BINARY.get(channel.type) or _CONTINUOUS.get(channel.type)
        if kind is None:
            continue  # no sensor, or a type this schema does not know
        number = index + 1
        factor = message.measurement_period_factor or (14 if isinstance(kind, _Binary) else 1)
        period = message.measurement_period_base * factor
        start_ms = channel.timestamp * 1000
        previous: bool | None = None
        for i, offset in enumerate(channel.sample_offsets):
            if offset in _ERRORS:
                continue
            if isinstance(kind, _Binary):
                negative = offset < 0
                if negative == previous:
                    continue
                previous = negative
                values = record(start_ms + (abs(offset) - 1) * 1000)
                values[f"{kind.prefix}{number}"] = kind.negative if negative else kind.positive
            else:
                values = record(start_ms + i * period * 1000)
                kind(values, number, channel.start_point + offset)
            values[f"measurement_interval_{number}"] = period
    if not by_ts:
        raise NoMeasurements("the message has no samples")
    return [(ts, by_ts[ts]) for ts in sorted(by_ts)]
