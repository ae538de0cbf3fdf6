"""What a C{gatewayctl} command group needs of the API client (L{gateway.cli})."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol

__all__ = ["Client"]


class Client(Protocol):
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, Optional[str]]] = None,
        content_type: str = "application/octet-stream",
    ) -> Any: ...

    def device(self, ref: str) -> dict[str, Any]: ...
