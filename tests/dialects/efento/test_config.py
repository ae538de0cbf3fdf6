"""ProtoConfig as client attributes, and a queued configuration encoded for the sensor."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dialects.efento.config import BadConfig, config_attributes, encode_config
from gateway.dialects.efento.schema import EfentoSchema


def test_attributes_are_json_format_with_defaults(schema: EfentoSchema) -> None:
    """Every field goes by JSON name, defaults included, enums by name, bytes in base64."""
    message: Any = schema.config(
        measurement_period_base=60, cloud_token="secret", serial_number=b"\x01\x02",
        channel_types=[1, 2], rules=[{"channel_mask": 1, "condition": 2, "parameters": [250]}],
    )
    values = config_attributes(message)
    assert values["measurementPeriodBase"] == 60
    assert values["transmissionInterval"] == 0
    assert values["requestDeviceInfo"] is False
    assert values["dataServerIp"] == ""
    assert values["serialNumber"] == "AQI="
    assert values["channelTypes"] == ["MEASUREMENT_TYPE_TEMPERATURE", "MEASUREMENT_TYPE_HUMIDITY"]
    assert values["rules"] == [{
        "channelMask": 1, "condition": "CONDITION_HIGH_THRESHOLD", "parameters": [250],
        "action": "ACTION_UNSPECIFIED",
    }]


def test_attributes_leave_the_cloud_token_out(schema: EfentoSchema) -> None:
    """The cloud token (the device's access token) is not written as an attribute."""
    assert "cloudToken" not in config_attributes(schema.config(cloud_token="secret"))


def test_encode_takes_either_field_naming(schema: EfentoSchema) -> None:
    """A configuration in camelCase or with the schema's names encodes to the same ProtoConfig."""
    camel = encode_config(schema.config, {"measurementPeriodBase": 120, "requestDeviceInfo": True})
    plain = encode_config(
        schema.config, {"measurement_period_base": 120, "request_device_info": True}
    )
    assert camel == plain
    decoded: Any = schema.config.FromString(camel)
    assert (decoded.measurement_period_base, decoded.request_device_info) == (120, True)


@pytest.mark.parametrize(
    "params", [None, "x", [1], {"noSuchField": 1}, {"transmissionInterval": "a"}]
)
def test_encode_refuses_what_does_not_fit(schema: EfentoSchema, params: Any) -> None:
    """Params that are not a ProtoConfig in JSON raise BadConfig."""
    with pytest.raises(BadConfig):
        encode_config(schema.config, params)
