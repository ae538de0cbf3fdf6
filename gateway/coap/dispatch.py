"""
Requests to responses: path lookup, option checks, block-wise, observe.

L{Dispatcher.handle} turns one request into a Deferred that always fires
with a response C{Message} (never fails): CoAP errors raised by resources
become their error responses, anything else a logged 5.00.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from txthings import coap as tx
from txthings import error as txerror
from txthings.resource import getChildForRequest

from . import errors
from . import numbers as n
from .blockwise import Blockwise, transfer_key
from .exchange import Exchange
from .observe import Observation, ObservationRegistry
from .options import table as option_table
from .params import EngineLimits
from .peer import IPeer
from .resource import NotificationRenderer, Resource

_KNOWN_OPTIONS = frozenset(n.OPTION_FORMATS)
_DEFAULT_RESOLVE = Resource.resolve
_METHODS = frozenset((n.GET, n.POST, n.PUT, n.DELETE))

log = Logger()


def error_response(code: int, diagnostic: str = "", **options: int) -> Any:
    response = tx.Message(code=code, payload=diagnostic.encode("utf-8"))
    for name, value in options.items():
        number = {"size1": n.SIZE1, "max_age": n.MAX_AGE}[name]
        response.opt.addOption(tx.UintOption(number, value))
    return response


def _path(options: dict[int, list[Any]]) -> list[bytes]:
    segments = [option.value for option in options.get(n.URI_PATH, ())]
    # Firmware that puts a whole path in one Uri-Path option (ThingsBoard's
    # documented "api/v1/$TOKEN/telemetry") is served as if it were split.
    if any(b"/" in segment for segment in segments):
        segments = [part for segment in segments for part in segment.split(b"/") if part]
    return segments


class Dispatcher:
    def __init__(
        self,
        root: Any,
        clock: IReactorTime,
        limits: EngineLimits,
        observations: ObservationRegistry,
        blockwise: Blockwise,
    ) -> None:
        self._root = root
        self._clock = clock
        self._limits = limits
        self._observations = observations
        self._blockwise = blockwise

    def handle(self, exchange: Exchange, respond: Callable[[Any, Exchange], object]) -> None:
        """
        Serve one request: C{respond(message, exchange)} is called once,
        synchronously when the resource answers at once, never with an error.
        """
        request = exchange.request
        peer = exchange.peer
        request.peer = peer
        request.remote = peer.address
        request.exchange = exchange
        try:
            result = self._dispatch(exchange)
        except Exception:
            respond(self._failed(Failure(), request, peer), exchange)
            return
        if isinstance(result, Deferred):
            result.addErrback(self._failed, request, peer)
            result.addCallback(respond, exchange)
        else:
            respond(result, exchange)

    def render_notification(
        self, observation: Observation, render: NotificationRenderer | None
    ) -> Deferred[Any]:
        """Render one notification for C{observation}; the Deferred never fails."""
        request = observation.request
        d = maybeDeferred(render or observation.resource.render, request)
        d.addCallback(self._check_message)
        d.addCallback(
            lambda response: self._blockwise.slice_response(
                transfer_key(observation.peer.key, request), request, response
            )
        )
        d.addErrback(self._failed, request, observation.peer)
        return d

    def _dispatch(self, exchange: Exchange) -> Any:
        request = exchange.request
        options = exchange.options
        if n.PROXY_URI in options or n.PROXY_SCHEME in options:
            raise errors.ProxyingNotSupported("proxying not supported")
        if request.invalid_options:
            raise errors.BadOption(f"malformed option {request.invalid_options[0]}")
        if request.code not in _METHODS:
            raise errors.MethodNotAllowed(f"method {n.code_text(request.code)} not supported")
        request.prepath = []
        request.postpath = _path(options)
        resource = getChildForRequest(self._root, request)
        understood = getattr(resource, "understood_options", ())
        for number in options:
            if number & 1 and number not in _KNOWN_OPTIONS and number not in understood:
                raise errors.BadOption(f"unknown critical option {number}")

        limit = self._limits.max_body_size
        size1 = options.get(n.SIZE1)
        if len(request.payload) > limit or (size1 and size1[0].value > limit):
            raise errors.RequestEntityTooLarge("request body too large", size1=limit)

        # Most resources keep the default resolve (themselves): no call then,
        # and no isinstance against Deferred (an ABC check) on every request.
        resolve = getattr(type(resource), "resolve", _DEFAULT_RESOLVE)
        if resolve is _DEFAULT_RESOLVE:
            return self._serve(resource, exchange)
        resolved = resolve(resource, request)
        if isinstance(resolved, Deferred):
            return resolved.addCallback(self._serve, exchange)
        return self._serve(resolved, exchange)

    def _serve(self, resource: Any, exchange: Exchange) -> Any:
        request = exchange.request
        peer = exchange.peer
        options = exchange.options
        block1_option = options.get(n.BLOCK1)
        if block1_option is not None:
            block1 = exchange.block1 = block1_option[0].value
            exchange.transfer = transfer_key(peer.key, request)
            complete, exchange.block1_szx = self._blockwise.receive_block1(
                exchange.transfer, request
            )
            if not complete:
                response = tx.Message(code=n.CONTINUE)
                response.opt.block1 = (block1.block_number, True, exchange.block1_szx)
                return response
        block2 = options.get(n.BLOCK2)
        if block2 is not None and block2[0].value.block_number > 0:
            key = exchange.transfer = exchange.transfer or transfer_key(peer.key, request)
            cached = self._blockwise.cached_response(key)
            if cached is not None:
                return self._blockwise.slice_response(key, request, cached)

        observe_option = options.get(n.OBSERVE)
        observe = observe_option[0].value if observe_option else None
        if observe is not None and request.code == n.GET:
            if observe == 1:
                self._observations.deregister(peer.key, request.token)
            elif observe == 0 and resource.observable:
                exchange.observation = self._observations.register(
                    resource, peer, request, self._clock.seconds()
                )

        observation = exchange.observation
        try:
            result = resource.render(request)
            if isinstance(result, Deferred):
                result.addCallback(self._finish, exchange)
            else:
                result = self._finish(result, exchange)
        except BaseException:
            if observation is not None:
                self._observations.cancel(observation)
            raise
        if observation is not None and isinstance(result, Deferred):
            result.addErrback(self._cancel_observation, observation)
        return result

    @staticmethod
    def _check_message(response: Any) -> Any:
        if not isinstance(response, tx.Message) or not n.is_response(response.code):
            raise TypeError(f"handler returned {response!r}, not a response Message")
        if isinstance(response.payload, str):
            response.payload = response.payload.encode("utf-8")
        return response

    def _finish(self, response: Any, exchange: Exchange) -> Any:
        response = self._check_message(response)
        request = exchange.request
        success = 64 <= response.code < 96
        options = exchange.options
        accept_option = options.get(n.ACCEPT)
        accept = accept_option[0].value if accept_option else None
        if accept is not None and success:
            content_format = response.opt.content_format
            if content_format is not None and content_format != accept:
                raise errors.NotAcceptable(f"only Content-Format {content_format} available")
        observation = exchange.observation
        if observation is not None:
            if success:
                response.opt.observe = observation.seq
            else:
                self._observations.cancel(observation)
        if exchange.block1 is not None:
            response.opt.block1 = (exchange.block1.block_number, False, exchange.block1_szx)
        if (
            len(response.payload) > self._limits.max_block_size
            or n.BLOCK2 in options
        ):
            response = self._blockwise.slice_response(
                exchange.transfer or transfer_key(exchange.peer.key, request), request, response
            )
        return response

    def _cancel_observation(self, failure: Failure, observation: Observation) -> Failure:
        self._observations.cancel(observation)
        return failure

    def _failed(self, failure: Failure, request: Any, peer: IPeer) -> Any:
        exc = failure.value
        if isinstance(exc, errors.CoAPError):
            return error_response(exc.code, exc.diagnostic, **exc.options)
        if isinstance(exc, txerror.NoResource):
            return error_response(n.NOT_FOUND, "not found")
        if isinstance(exc, (txerror.UnallowedMethod, txerror.UnsupportedMethod)):
            return error_response(n.METHOD_NOT_ALLOWED, "method not allowed")
        log.failure(
            "Handler failed for {method} {path} from {peer}",
            failure,
            method=n.code_text(request.code),
            path="/" + "/".join(s.decode("utf-8", "replace") for s in _path(option_table(request))),
            peer=str(peer),
        )
        return error_response(n.INTERNAL_SERVER_ERROR, "internal error")
