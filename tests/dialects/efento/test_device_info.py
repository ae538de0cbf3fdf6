"""ProtoDeviceInfo as one telemetry record with the reference's keys."""

from __future__ import annotations

from typing import Any

from gateway.dialects.efento.device_info import date_text, device_info_record
from gateway.dialects.efento.schema import EfentoSchema

KNOWN = 1_700_000_000
UNDEFINED = 0xFFFFFFFF


def info(schema: EfentoSchema, **fields: Any) -> Any:
    return schema.device_info(serial_num=b"\x01", cloud_token="tok", **fields)


def test_memory_statistics_by_index(schema: EfentoSchema) -> None:
    """The 22 memory statistics get their names; timestamps as dates, 4294967295 as Undefined."""
    stats = [0, KNOWN, 1048576, 512000, 1024, 256, 100, 10, 2, 500, 400, 300, 200, 100, 50,
             UNDEFINED, UNDEFINED, UNDEFINED, KNOWN, KNOWN, KNOWN, 42]
    ts, values = device_info_record(info(schema, sw_version=1546, memory_statistics=stats))
    assert ts is None
    assert values["sw_version"] == 1546
    assert values["nv_storage_status"] == 0
    assert values["timestamp_of_the_end_of_collecting_statistics"] == "14 Nov 2023 22:13:20 +0000"
    assert values["capacity_of_memory_in_bytes"] == 1048576
    assert values["number_of_corrupted_packets"] == 2
    assert values["number_of_all_samples_for_channel_6"] == 50
    assert values["timestamp_of_the_first_binary_measurement"] == "Undefined"
    assert values["timestamp_of_the_last_continuous_measurement_sent"] == date_text(KNOWN)
    assert values["nvm_write_counter"] == 42


def test_modem_and_runtime(schema: EfentoSchema) -> None:
    """The modem's type by name and its parameters in the schema's order; the runtime's figures."""
    message = info(
        schema,
        modem={"type": 1, "parameters": list(range(100, 134))},
        runtime_info={
            "up_time": 3600, "message_counters": [5, 6, 7], "mcu_temperature": -3,
            "min_battery_voltage": 3100, "min_battery_mcu_temperature": -10,
            "battery_reset_timestamp": KNOWN, "max_mcu_temperature": 40,
            "min_mcu_temperature": -20, "runtime_errors": [4, 9],
        },
    )
    _, values = device_info_record(message)
    assert values["modem_types"] == "MODEM_TYPE_BC66"
    assert (values["sc_EARFCN"], values["sc_EARNFCN_offset"], values["tx_time"]) == (100, 101, 133)
    assert values["MAC_UL_TOTAL_BYTES"] == 121
    assert values["counter_of_confirmable_messages_attempts"] == 5
    assert values["counter_of_succeeded_messages"] == 7
    assert values["battery_reset_timestamp"] == date_text(KNOWN)
    assert (values["mcu_temp"], values["max_mcu_temp"], values["min_mcu_temp"]) == (-3, 40, -20)
    assert (values["min_battery_voltage"], values["min_battery_mcu_temp"]) == (3100, -10)
    assert (values["runtime_errors"], values["up_time"]) == (2, 3600)


def test_short_lists_leave_keys_out(schema: EfentoSchema) -> None:
    """Statistics and parameters the sensor did not send are absent, not an error."""
    _, values = device_info_record(info(schema, memory_statistics=[1], modem={"parameters": [7]}))
    assert values["nv_storage_status"] == 1
    assert "capacity_of_memory_in_bytes" not in values
    assert values["sc_EARFCN"] == 7 and "sc_PCI" not in values
    assert values["modem_types"] == "MODEM_TYPE_UNSPECIFIED"
