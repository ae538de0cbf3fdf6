# -*- test-case-name: tests.store.test_contract -*-
"""
Rows as the SQL backends store them: the column lists every backend's
schema shares and the converters between rows and the domain's records.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from gateway.domain.model import (
    Credential,
    CredentialKind,
    Device,
    PayloadFormat,
    PowerMode,
    Profile,
    ProvisionStrategy,
    Rpc,
    RpcState,
)
from gateway.store.values import decode_json

__all__ = [
    "DEVICE_COLUMNS",
    "EVENT_COLUMNS",
    "PROFILE_COLUMNS",
    "RPC_COLUMNS",
    "UNFINISHED_SQL",
    "credential_from_row",
    "device_from_row",
    "device_values",
    "profile_from_row",
    "rpc_from_row",
]

#: The columns of an outbox row, in L{OutboxEvent}'s order.
EVENT_COLUMNS = "position, device_id, sequence, event_id, type, time_ms, received_ms, body"

def device_from_row(row: Sequence[Any]) -> Device:
    return Device(
        id=row[0],
        name=row[1],
        application=row[2],
        profile=row[3],
        enabled=bool(row[4]),
        created=float(row[5]),
        power_mode=None if row[6] is None else PowerMode(row[6]),
        psm_activity_timer=row[7],
        edrx_cycle=row[8],
        paging_transmission_window=row[9],
        gateways=json.loads(row[10]),
    )


DEVICE_COLUMNS = (
    "id, name, application, profile, enabled, created, power_mode, "
    "psm_activity_timer, edrx_cycle, paging_transmission_window, gateways"
)


def device_values(device: Device) -> tuple[Any, ...]:
    """The values of L{DEVICE_COLUMNS} for C{device}."""
    return (
        device.id,
        device.name,
        device.application,
        device.profile,
        int(device.enabled),
        device.created,
        None if device.power_mode is None else device.power_mode.value,
        device.psm_activity_timer,
        device.edrx_cycle,
        device.paging_transmission_window,
        json.dumps(list(device.gateways)),
    )


RPC_COLUMNS = (
    "device_id, id, method, params, oneway, timeout_ms, expires_at, created, "
    "state, retries, sent_at, updated, response, error, content_type"
)

#: The states an unfinished RPC is in (the partial index's, as SQL).
UNFINISHED_SQL = "('QUEUED', 'SENT', 'DELIVERED')"


def rpc_from_row(row: Sequence[Any]) -> Rpc:
    return Rpc(
        device_id=row[0],
        id=row[1],
        method=row[2],
        params=decode_json(row[3]),
        oneway=bool(row[4]),
        timeout_ms=row[5],
        expires_at=row[6],
        created=row[7],
        state=RpcState(row[8]),
        retries=row[9],
        sent_at=row[10],
        updated=row[11],
        response=decode_json(row[12]),
        error=row[13],
        content_type=row[14],
    )

PROFILE_COLUMNS = (
    "name, payload_format, telemetry_proto, attributes_proto, "
    "rpc_request_proto, rpc_response_proto, power_mode, psm_activity_timer, "
    "edrx_cycle, paging_transmission_window, provisioning, provision_key, "
    "provision_secret, strict_json"
)


def profile_from_row(row: Sequence[Any]) -> Profile:
    return Profile(
        name=row[0],
        payload_format=PayloadFormat(row[1]),
        telemetry_proto=row[2],
        attributes_proto=row[3],
        rpc_request_proto=row[4],
        rpc_response_proto=row[5],
        power_mode=PowerMode(row[6]),
        psm_activity_timer=row[7],
        edrx_cycle=row[8],
        paging_transmission_window=row[9],
        provisioning=ProvisionStrategy(row[10]),
        provision_key=row[11],
        provision_secret=row[12],
        strict_json=bool(row[13]),
    )


def credential_from_row(row: Sequence[Any]) -> Credential:
    return Credential(row[0], CredentialKind(row[1]), row[2], bytes(row[3]))
