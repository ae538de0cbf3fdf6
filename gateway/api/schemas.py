# -*- test-case-name: tests.api.test_openapi -*-
"""
The JSON schemas of the API's bodies (OpenAPI 3.0 dialect), referenced by
the route table and published under C{components/schemas}.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPONENTS", "ref"]


def ref(name: str) -> dict[str, Any]:
    """A reference to the component schema C{name}."""
    return {"$ref": f"#/components/schemas/{name}"}


_JSON_VALUE: dict[str, Any] = {"description": "Any JSON value."}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_MS = {"type": "integer", "minimum": 0, "nullable": True}
#: A protobuf profile's schema.
_PROTO_SCHEMA = {
    "type": "string",
    "nullable": True,
    "description": (
        "A proto3 schema (no imports, options, required or defaults), compiled when the "
        "profile is created or changed; its last top-level message is the payload's. "
        "null: ThingsBoard's default (etc/proto)."
    ),
}

#: A device's own power-saving settings (null: the profile's apply).
_POWER: dict[str, Any] = {
    "power_mode": {"type": "string", "enum": ["none", "psm", "drx", "edrx"], "nullable": True},
    "psm_activity_timer": _NULLABLE_MS,
    "edrx_cycle": _NULLABLE_MS,
    "paging_transmission_window": _NULLABLE_MS,
}

#: The devices of the application that may publish for this one (Drogue's C{as}).
_GATEWAYS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

_EVENT_ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "position": {"type": "integer", "description": "Place in the outbox (paging)."},
        "event": {"type": "object", "description": "The CloudEvent, structured JSON."},
    },
}
_NEXT = {"type": "integer", "nullable": True, "description": "'after' for the next page."}

_MODE_COUNTS = {
    "type": "object",
    "properties": {mode: {"type": "integer"} for mode in ("psk", "x509", "one_way")},
}
_OUTCOMES = {
    "type": "object",
    "properties": {outcome: {"type": "integer"} for outcome in ("ok", "failed", "timeout")},
}

COMPONENTS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
    "Credentials": {
        "type": "object",
        "description": (
            "One credential: access_token (token optional: generated), psk "
            "(identity, key in hex), x509 (certificate in PEM) or basic "
            "(username, default the device name, and password)."
        ),
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["access_token", "psk", "x509", "basic"]},
            "token": {"type": "string"},
            "identity": {"type": "string"},
            "key": {"type": "string", "pattern": "^([0-9a-fA-F]{2})+$"},
            "certificate": {"type": "string"},
            "username": {"type": "string"},
            "password": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "CredentialInfo": {
        "type": "object",
        "description": "A credential without its secret.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string"},
            "sha256": {"type": "string"},
            "identity": {"type": "string"},
            "username": {"type": "string"},
        },
    },
    "CredentialsSet": {
        "type": "object",
        "description": "The credential set; an access token is shown this once.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string"},
            "token": {"type": "string"},
            "sha256": {"type": "string"},
            "identity": {"type": "string"},
            "username": {"type": "string"},
        },
    },
    "Device": {
        "type": "object",
        "required": ["id", "name", "application", "profile", "enabled", "created"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "application": {"type": "string"},
            "profile": {"type": "string"},
            "enabled": {"type": "boolean"},
            "created": {"type": "integer", "description": "Creation time, ms since the epoch."},
            **_POWER,
            "gateways": _GATEWAYS,
            "credentials": {"type": "array", "items": ref("CredentialInfo")},
            "access_token": {
                "type": "string",
                "description": "Only in the creation response, when one was set.",
            },
        },
    },
    "Claim": {
        "type": "object",
        "description": "A pending claim a device asked for (its secret is never shown).",
        "required": ["created", "expires_at", "secret_required"],
        "properties": {
            "created": {"type": "integer", "description": "ms since the epoch"},
            "expires_at": {"type": "integer", "description": "ms since the epoch"},
            "secret_required": {
                "type": "boolean",
                "description": "Whether claiming needs the secret the device gave.",
            },
        },
    },
    "DeviceCreate": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "application": {"type": "string"},
            "profile": {"type": "string"},
            "enabled": {"type": "boolean"},
            "credentials": ref("Credentials"),
            "gateways": _GATEWAYS,
            **_POWER,
        },
        "additionalProperties": False,
    },
    "DevicePatch": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "profile": {"type": "string"},
            "enabled": {"type": "boolean"},
            "gateways": _GATEWAYS,
            **_POWER,
        },
        "additionalProperties": False,
    },
    "DeviceList": {
        "type": "object",
        "properties": {"devices": {"type": "array", "items": ref("Device")}},
    },
    "Profile": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "payload_format": {"type": "string", "enum": ["json", "protobuf"]},
            "telemetry_proto": _PROTO_SCHEMA,
            "attributes_proto": _PROTO_SCHEMA,
            "rpc_request_proto": _PROTO_SCHEMA,
            "rpc_response_proto": _PROTO_SCHEMA,
            "power_mode": {"type": "string", "enum": ["none", "psm", "drx", "edrx"]},
            "psm_activity_timer": _NULLABLE_MS,
            "edrx_cycle": _NULLABLE_MS,
            "paging_transmission_window": _NULLABLE_MS,
            "provisioning": {
                "type": "string",
                "enum": ["disabled", "allow_create_new", "check_pre_provisioned"],
            },
            "provision_key": _NULLABLE_STRING,
            "provision_secret": _NULLABLE_STRING,
            "strict_json": {
                "type": "boolean",
                "description": (
                    "Device JSON must be strict; false (the default) reads it as "
                    "leniently as ThingsBoard (Gson): unquoted or single-quoted "
                    "names and strings, comments."
                ),
            },
        },
        "additionalProperties": False,
    },
    "ProfileList": {
        "type": "object",
        "properties": {"profiles": {"type": "array", "items": ref("Profile")}},
    },
    "AttributeValues": {
        "type": "object",
        "description": "Attribute key to value.",
        "additionalProperties": _JSON_VALUE,
    },
    "Attributes": {
        "type": "object",
        "description": "Attribute values by scope (only the asked scope with ?scope=).",
        "properties": {
            "client": ref("AttributeValues"),
            "shared": ref("AttributeValues"),
            "server": ref("AttributeValues"),
        },
    },
    "AttributesUpdated": {
        "type": "object",
        "properties": {
            "scope": {"type": "string"},
            "updated": {"type": "array", "items": {"type": "string"}},
        },
    },
    "AttributesDeleted": {
        "type": "object",
        "properties": {
            "scope": {"type": "string"},
            "deleted": {"type": "array", "items": {"type": "string"}},
        },
    },
    "LatestTelemetry": {
        "type": "object",
        "description": "Telemetry key to its latest value and timestamp (ms).",
        "additionalProperties": {
            "type": "object",
            "properties": {"ts": {"type": "integer"}, "value": _JSON_VALUE},
        },
    },
}

COMPONENTS["ProfilePatch"] = {
    "type": "object",
    "description": "Profile fields to change; 'name', if given, must be the profile's.",
    "properties": COMPONENTS["Profile"]["properties"],
    "additionalProperties": False,
}


COMPONENTS.update({
    "EventPage": {
        "type": "object",
        "properties": {"events": {"type": "array", "items": _EVENT_ENTRY}, "next": _NEXT},
    },
    "DeadLetterPage": {
        "type": "object",
        "properties": {
            "dead_letters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        **_EVENT_ENTRY["properties"],
                        "status": {"type": "integer", "description": "HTTP status, 0 if none."},
                        "reason": {"type": "string", "description": "The response body."},
                        "failed": {"type": "integer", "description": "When, in ms."},
                    },
                },
            },
            "next": _NEXT,
        },
    },
    "UpstreamStatus": {
        "type": "object",
        "properties": {
            "forwarding": {"type": "boolean", "description": "Whether a url is configured."},
            "url": _NULLABLE_STRING,
            "mode": _NULLABLE_STRING,
            "depth": {"type": "integer", "description": "Events in the outbox."},
            "oldest_age": {"type": "number", "nullable": True,
                           "description": "Seconds since the oldest held event came."},
            "delivered": {"type": "integer"},
            "retried": {"type": "integer"},
            "failed": {"type": "integer"},
            "dead": {"type": "integer"},
            "last_error": _NULLABLE_STRING,
            "backoff": {"type": "number", "description": "Seconds of the wait in progress."},
            "connected": {"type": "boolean"},
        },
    },
    "DtlsStatus": {
        "type": "object",
        "required": ["enabled"],
        "properties": {
            "enabled": {"type": "boolean", "description": "Whether DTLS is served."},
            "sessions": {
                "type": "object",
                "properties": {
                    "open": {"type": "integer"},
                    "handshaking": {"type": "integer"},
                    "by_mode": _MODE_COUNTS,
                    "max": {"type": "integer"},
                },
            },
            "handshakes": {
                "type": "object",
                "description": "Finished handshakes by mode (psk, x509, one_way) and outcome.",
                "properties": {mode: _OUTCOMES for mode in ("psk", "x509", "one_way")},
            },
            "hello_verify_requests": {"type": "integer",
                                      "description": "ClientHellos answered with a cookie."},
            "cookie_rejections": {"type": "integer",
                                  "description": "ClientHellos with a wrong or stale cookie."},
            "not_client_hello": {"type": "integer",
                                 "description": "Datagrams from strangers that were dropped."},
            "rate_limited": {"type": "integer",
                             "description": "Handshakes refused: the source's budget was spent."},
            "session_limit": {"type": "integer",
                              "description": "Handshakes refused: the session table was full."},
            "replaced": {"type": "integer",
                         "description": "Sessions replaced by a new handshake (same address)."},
            "idle_timeouts": {"type": "integer"},
            "closed_by_client": {"type": "integer"},
            "send_errors": {"type": "integer"},
            "settings": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
    "Replayed": {"type": "object", "properties": {"replayed": {"type": "integer"}}},
    "Discarded": {"type": "object", "properties": {"discarded": {"type": "integer"}}},
})

_STATES = ["QUEUED", "SENT", "DELIVERED", "SUCCESSFUL", "TIMEOUT", "EXPIRED", "FAILED"]

COMPONENTS.update({
    "RpcRequest": {
        "type": "object",
        "required": ["method"],
        "properties": {
            "method": {"type": "string"},
            "params": _JSON_VALUE,
            "timeout": {"type": "integer", "minimum": 1,
                        "description": "ms to wait for the reply once sent ([rpc] reply_timeout)."},
            "oneway": {"type": "boolean"},
            "expirationTime": {"type": "integer", "minimum": 1,
                               "description": "ms since the epoch; not sent by then: EXPIRED."},
        },
        "additionalProperties": False,
    },
    "Rpc": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "method": {"type": "string"},
            "params": _JSON_VALUE,
            "oneway": {"type": "boolean"},
            "timeout": {"type": "integer", "description": "ms"},
            "expires_at": {"type": "integer", "description": "ms since the epoch"},
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
            "sent_at": _NULLABLE_MS,
            "state": {"type": "string", "enum": _STATES},
            "retries": {"type": "integer"},
            "response": _JSON_VALUE,
            "error": _NULLABLE_STRING,
            "content_type": {
                **_NULLABLE_STRING,
                "description": "the media type of params sent as a payload (a command's)",
            },
        },
    },
    "RpcList": {
        "type": "object",
        "properties": {"rpcs": {"type": "array", "items": ref("Rpc")}},
    },
    "Reachability": {
        "type": "object",
        "properties": {
            "power_mode": {"type": "string", "enum": ["none", "psm", "drx", "edrx"]},
            "state": {"type": "string", "enum": ["awake", "asleep"]},
            "awake_until": {**_NULLABLE_MS, "description": "When the open window closes."},
            "next_window": {**_NULLABLE_MS, "description": "When the next window opens (eDRX)."},
            "last_heard": {**_NULLABLE_MS, "description": "The last uplink or ACK."},
        },
    },
})

_OTA_TYPE = {"type": "string", "enum": ["firmware", "software"]}
_OTA_PACKAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": _OTA_TYPE,
        "title": {"type": "string"},
        "version": {"type": "string"},
        "checksum": {"type": "string", "description": "Lower-case hex."},
        "checksum_algorithm": {
            "type": "string", "enum": ["SHA256", "SHA384", "SHA512", "MD5", "CRC32"],
        },
        "size": {"type": "integer", "description": "Bytes."},
        "content_type": {"type": "string"},
        "created": {"type": "integer", "description": "ms since the epoch"},
    },
}
_OTA_ASSIGNMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": _OTA_TYPE,
        "target_type": {"type": "string", "enum": ["device", "profile"]},
        "target": {"type": "string", "description": "A device id or profile name."},
        "title": {"type": "string"},
        "version": {"type": "string"},
    },
}
_OTA_KIND_STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "package": {**ref("OtaPackage"), "nullable": True},
        "assigned_by": {"type": "string", "enum": ["device", "profile"], "nullable": True},
        "state": {**_JSON_VALUE, "description": "The last fw_state/sw_state reported."},
        "state_ts": _NULLABLE_MS,
    },
}
COMPONENTS.update({
    "OtaPackage": _OTA_PACKAGE,
    "OtaPackageList": {
        "type": "object",
        "properties": {"packages": {"type": "array", "items": ref("OtaPackage")}},
    },
    "OtaAssign": {
        "type": "object",
        "required": ["title", "version"],
        "properties": {"title": {"type": "string"}, "version": {"type": "string"}},
    },
    "OtaAssignment": _OTA_ASSIGNMENT,
    "OtaAssignmentList": {
        "type": "object",
        "properties": {"assignments": {"type": "array", "items": ref("OtaAssignment")}},
    },
    "OtaStatus": {
        "type": "object",
        "properties": {
            "device": {"type": "string"},
            "firmware": _OTA_KIND_STATUS,
            "software": _OTA_KIND_STATUS,
        },
    },
})
