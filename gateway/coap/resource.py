"""
The resource API: txThings' C{CoAPResource}, with what the engine adds.

Dialects subclass L{Resource} and implement C{render_GET}/C{render_POST}/...,
returning a C{txthings.coap.Message} or a Deferred firing with one, or raising
a L{gateway.coap.errors.CoAPError}.  The request they receive carries
C{request.peer} (an L{IPeer}) and C{request.remote} (its address).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterator

from txthings import coap as tx
from txthings.resource import CoAPResource

from . import numbers as n

#: Renders a notification for one observer's stored request.
NotificationRenderer = Callable[[Any], Any]


class Resource(CoAPResource):
    """
    A CoAP resource served by the gateway engine.

    @cvar understood_options: non-standard option numbers this resource
        handles; an odd (critical) one not listed here gets 4.02.
    @cvar link_attributes: extra RFC 6690 attributes for C{/.well-known/core},
        e.g. C{{"rt": "temperature", "ct": "50"}}.
    """

    understood_options: ClassVar[frozenset[int]] = frozenset()
    link_attributes: ClassVar[dict[str, str]] = {}
    #: Children served by C{getChild} (not in the static tree) that
    #: C{/.well-known/core} should list: relative path -> link attributes
    #: (an empty value, as for C{obs}, is written bare).
    dynamic_links: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.visible = True

    def putChild(self, path: bytes, child: CoAPResource) -> None:
        """Mount C{child} at C{path}; L{ValueError} if something is mounted there."""
        existing = self.children.get(path)
        if existing is not None and existing is not child:
            raise ValueError(f"{path.decode('utf-8', 'replace')!r} is already mounted")
        super().putChild(path, child)

    def resolve(self, request: Any) -> Any:
        """
        The resource that serves C{request}, or a Deferred firing with it,
        called before block-wise reassembly, observation and rendering: the
        place to authenticate (raise or fail with a L{CoAPError} to refuse).
        By default, this resource.
        """
        return self

    def observer_added(self, observation: Any) -> None:
        """The engine registered C{observation} on this resource (a hook)."""

    def observer_removed(self, observation: Any) -> None:
        """
        C{observation} of this resource ended, for whatever reason (a hook:
        C{self.observers} no longer holds it).
        """

    def notification_settled(self, observation: Any, outcome: str) -> None:
        """
        A CON notification to C{observation} ended with C{outcome}: C{"ack"},
        C{"reset"} or C{"timeout"} (a hook: the device was reached, refused
        or could not be reached).
        """

    def updatedState(self) -> None:
        """Re-render every observer's request and notify it."""
        self.notify()

    def notify(self, render: NotificationRenderer | None = None) -> None:
        """
        Notify every observer, with C{render(request)} instead of the resource's
        C{render_GET} when given (for notifications that carry a change rather
        than the whole state).
        """
        for observation in list(self.observers.values()):
            observation.trigger(render)


class WellKnownCore(Resource):
    """C{/.well-known/core} in RFC 6690 link format, walked from the root."""

    def __init__(self, root: CoAPResource) -> None:
        super().__init__()
        self.visible = False
        self._root = root

    def render_GET(self, request: Any) -> Any:
        response = tx.Message(code=n.CONTENT, payload=self.links().encode("utf-8"))
        response.opt.content_format = n.LINK_FORMAT
        return response

    def links(self) -> str:
        return ",".join(_links(self._root, ""))


def _segment(name: bytes | str) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def _link(path: str, attributes: dict[str, str]) -> str:
    return f"<{path}>" + "".join(
        f";{key}" if not value else f";{key}={value}" if value.isdigit() else f';{key}="{value}"'
        for key, value in attributes.items()
    )


def _links(resource: CoAPResource, path: str) -> Iterator[str]:
    for name in sorted(resource.children, key=_segment):
        child = resource.children[name]
        child_path = f"{path}/{_segment(name)}"
        if getattr(child, "visible", False):
            attributes = dict(getattr(child, "link_attributes", {}))
            if child.observable:
                attributes["obs"] = ""
            yield _link(child_path, attributes)
        for relative, attributes in getattr(child, "dynamic_links", {}).items():
            yield _link(f"{child_path}/{relative}", attributes)
        yield from _links(child, child_path)
