# -*- test-case-name: tests.dialects.efento.test_device_info -*-
"""
Telemetry from an Efento C{ProtoDeviceInfo}, with the reference's keys: the
software version, the memory statistics, the modem's parameters and the
runtime information, as one record stamped when it arrives.

Timestamps among the statistics are written C{dd Mon yyyy HH:mm:ss +0000}
(the reference uses the server's zone; this, UTC), C{Undefined} for the
sensor's 4294967295.  Unlike the reference, which fails on a short list, a
statistic or parameter the sensor did not send is left out; and the modem
parameters are named in the schema's order (C{sc_EARFCN} first), where the
reference swaps the first two.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from gateway.domain.model import JSONValue, TelemetryRecord

__all__ = ["device_info_record"]

_UNDEFINED = 0xFFFFFFFF

#: The memory statistics by index; True marks a timestamp.
_MEMORY = (
    ("nv_storage_status", False),
    ("timestamp_of_the_end_of_collecting_statistics", True),
    ("capacity_of_memory_in_bytes", False),
    ("used_space_in_bytes", False),
    ("size_of_invalid_packets_in_bytes", False),
    ("size_of_corrupted_packets_in_bytes", False),
    ("number_of_valid_packets", False),
    ("number_of_invalid_packets", False),
    ("number_of_corrupted_packets", False),
    *((f"number_of_all_samples_for_channel_{n}", False) for n in range(1, 7)),
    ("timestamp_of_the_first_binary_measurement", True),
    ("timestamp_of_the_last_binary_measurement", True),
    ("timestamp_of_the_first_binary_measurement_sent", True),
    ("timestamp_of_the_first_continuous_measurement", True),
    ("timestamp_of_the_last_continuous_measurement", True),
    ("timestamp_of_the_last_continuous_measurement_sent", True),
    ("nvm_write_counter", False),
)

#: The modem parameters by index (the schema's order).
_MODEM = (
    "sc_EARFCN", "sc_EARNFCN_offset", "sc_PCI", "sc_Cell_id", "sc_RSRP", "sc_RSRQ",
    "sc_RSSI", "sc_SINR", "sc_Band", "sc_TAC", "sc_ECL", "sc_TX_PWR", "op_mode",
    "nc_EARFCN", "nc_EARNFCN_offset", "nc_PCI", "nc_RSRP", "RLC_UL_BLER", "RLC_DL_BLER",
    "MAC_UL_BLER", "MAC_DL_BLER", "MAC_UL_TOTAL_BYTES", "MAC_DL_TOTAL_BYTES",
    "MAC_UL_total_HARQ_Tx", "MAC_DL_total_HARQ_Tx", "MAC_UL_HARQ_re_Tx", "MAC_DL_HARQ_re_Tx",
    "RLC_UL_tput", "RLC_DL_tput", "MAC_UL_tput", "MAC_DL_tput", "sleep_duration",
    "rx_time", "tx_time",
)

#: The runtime message counters by index.
_COUNTERS = (
    "counter_of_confirmable_messages_attempts",
    "counter_of_non_confirmable_messages_attempts",
    "counter_of_succeeded_messages",
)


def date_text(seconds: int) -> str:
    """A statistic's timestamp as the device-info keys carry it."""
    if seconds in (-1, _UNDEFINED):
        return "Undefined"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%d %b %Y %H:%M:%S +0000")


def _enum_name(message: Any, field: str) -> str:
    """The name of an enum field's value (its number when the schema has no name for it)."""
    names = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number
    number = getattr(message, field)
    return str(names[number].name) if number in names else str(number)


def _indexed(values: dict[str, JSONValue], names: Sequence[str], items: Sequence[int]) -> None:
    for name, item in zip(names, items, strict=False):
        values[name] = item


def device_info_record(message: Any) -> TelemetryRecord:
    """The one record of a C{ProtoDeviceInfo}, to be stamped on arrival."""
    values: dict[str, JSONValue] = {"sw_version": message.sw_version}
    for (name, is_time), item in zip(_MEMORY, message.memory_statistics, strict=False):
        values[name] = date_text(item) if is_time else item
    modem = message.modem
    values["modem_types"] = _enum_name(modem, "type")
    _indexed(values, _MODEM, modem.parameters)
    runtime = message.runtime_info
    values["battery_reset_timestamp"] = date_text(runtime.battery_reset_timestamp)
    values["max_mcu_temp"] = runtime.max_mcu_temperature
    values["mcu_temp"] = runtime.mcu_temperature
    _indexed(values, _COUNTERS, runtime.message_counters)
    values["min_battery_mcu_temp"] = runtime.min_battery_mcu_temperature
    values["min_battery_voltage"] = runtime.min_battery_voltage
    values["min_mcu_temp"] = runtime.min_mcu_temperature
    values["runtime_errors"] = len(runtime.runtime_errors)
    values["up_time"] = runtime.up_time
    return (None, values)
