# -*- test-case-name: tests.dialects.test_thingsboard_ota -*-
"""
ThingsBoard's OTA downloads (reference section 6): C{GET /fw/{token}} and
C{/sw/{token}}, and the documented C{/api/v1/{token}/firmware} and
C{/software} (which ThingsBoard answers 4.00, its issues #9261/#9262).

 - Uri-Query C{title} and C{version}, if present, must name the device's
   assigned package: otherwise 4.00 with the reason.  No package assigned:
   4.04.
 - C{size} (bytes) and C{chunk} (0-based) select bytes
   C{[size*chunk, size*chunk+size)}; without C{size} (or C{size=0}) the
   whole package is returned, by plain Block2 when it is larger than a
   block.  A query element counts only as C{name=value} with exactly one
   C{=}, the last occurrence winning, as in ThingsBoard.
 - C{/fw} takes exactly one more segment, the token (anything else: 4.01,
   as ThingsBoard).  Deliberately unlike ThingsBoard (its issue #13097),
   PSK and X.509 devices download too: C{GET /fw} (and
   C{/api/v1/firmware}) on their DTLS session, as the other token-less
   forms.
 - Differences: a chunk past the end of the package is a 4.00 "chunk past
   the end" (ThingsBoard never answers it), a C{size} or C{chunk} that is
   not a non-negative integer a 4.00 (ThingsBoard: 5.00), and the answer
   is piggybacked when it is ready in time (ThingsBoard always sends a
   separate response).  Like ThingsBoard, no Content-Format is set.

The whole package is the very body the OTA service holds for every device
(never copied per download); its ETag is taken from the SHA-256 of the
content, so the block-wise layer need not checksum a large body per
transfer.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

import attrs
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.dialects.failures import service_failure
from gateway.dialects.toolkit import (
    DeviceLeaf,
    DeviceRoute,
    authenticate_peer,
    authenticate_token,
)
from gateway.domain.model import Device
from gateway.domain.ota import OtaKind
from gateway.service.interfaces import Download, IDeviceServices

__all__ = ["OtaQuery", "PackageResource", "ota_query", "ota_route"]

#: OTA downloads are GET only (POST is a 4.05, as in ThingsBoard).
_METHODS = frozenset({n.GET})


@attrs.frozen
class OtaQuery:
    title: Optional[str] = None
    version: Optional[str] = None
    size: int = 0
    chunk: int = 0


def _count(name: str, text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise errors.BadRequest(f"{name} must be a non-negative integer")
    return int(text)


def ota_query(queries: list[bytes]) -> OtaQuery:
    """The C{title}, C{version}, C{size} and C{chunk} of the Uri-Query options."""
    found: dict[str, str] = {}
    for raw in queries:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        parts = text.split("=")
        if len(parts) == 2:
            found[parts[0]] = parts[1]
    return OtaQuery(
        found.get("title"),
        found.get("version"),
        _count("size", found.get("size", "0")),
        _count("chunk", found.get("chunk", "0")),
    )


class PackageResource(DeviceLeaf):
    """One OTA download of an authenticated device."""

    def __init__(self, devices: IDeviceServices, kind: OtaKind, device: Device) -> None:
        super().__init__(devices, device)
        self._kind = kind

    def render_GET(self, request: Any) -> Any:
        query = ota_query(request.opt.uri_query)
        d = self.devices.ota_download(self.device.id, self._kind)
        d.addCallback(self._answer, query)
        d.addErrback(service_failure)
        return d

    def _answer(self, download: Optional[Download], query: OtaQuery) -> Any:
        kind = self._kind.value
        if download is None:
            raise errors.NotFound(f"no {kind} assigned")
        package, content = download.package, download.content
        for name, asked, assigned in (
            ("title", query.title, package.title),
            ("version", query.version, package.version),
        ):
            if asked is not None and asked != assigned:
                raise errors.BadRequest(
                    f"{name} {asked!r} is not the assigned {kind}'s ({assigned!r})"
                )
        response = tx.Message(code=n.CONTENT)
        start = query.size * query.chunk
        if query.size == 0 or (start == 0 and query.size >= len(content)):
            response.payload = content
            response.opt.etag = bytes.fromhex(package.content_sha256[:16])
            return response
        if start >= len(content):
            raise errors.BadRequest(
                f"chunk {query.chunk} of {query.size} bytes is past the end"
                f" of the {kind} ({len(content)} bytes)"
            )
        response.payload = content[start : start + query.size]
        return response


def _authenticate(devices: IDeviceServices, request: Any) -> Optional[Device]:
    """C{/fw}: the DTLS identity's device; C{/fw/{token}}: the token's; deeper: nobody."""
    rest = request.postpath
    if not rest:
        return authenticate_peer(devices, request)
    if len(rest) == 1:
        try:
            token = rest[0].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return authenticate_token(devices, request, token)
    return None


def ota_route(devices: IDeviceServices, kind: OtaKind) -> DeviceRoute:
    """The C{/fw} (or C{/sw}) resource."""
    return DeviceRoute(
        devices,
        _authenticate,
        partial(PackageResource, devices, kind),
        _METHODS,
        "unknown or missing access token",
    )
