"""
Sending Observe notifications (RFC 7641 §4.5): which go as CON, which as NON.

A notification goes as the registration went (CON or NON), except that an
error notification, and the first one after a day without a CON, are
confirmable (§4.5: a NON observer must be checked now and then).  One CON
notification is in flight per observation; what changes meanwhile waits in
the observation.  An error notification ends the observation.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from . import codec
from . import numbers as n
from .dispatch import Dispatcher
from .observe import Observation, ObservationRegistry
from .resource import NotificationRenderer
from .transmit import Transmitter

__all__ = ["Notifier"]

_DAY = 24 * 3600.0


class Notifier:
    def __init__(
        self,
        clock: IReactorTime,
        transmitter: Transmitter,
        dispatcher: Dispatcher,
        observations: ObservationRegistry,
    ) -> None:
        self._clock = clock
        self._transmitter = transmitter
        self._dispatcher = dispatcher
        self._observations = observations

    def send(self, observation: Observation, render: NotificationRenderer | None) -> None:
        """Render one notification for C{observation} and send it."""
        d = self._dispatcher.render_notification(observation, render)
        d.addCallback(self._send, observation)

    def _send(self, response: Any, observation: Observation) -> None:
        observations = self._observations
        if not observation.active:
            return
        peer = observation.peer
        success = 64 <= response.code < 96
        now = self._clock.seconds()
        confirmable = (
            observation.confirmable or not success or now - observation.last_confirmable >= _DAY
        )
        if confirmable and observation.in_flight:
            observation.pending.insert(0, None)
            return
        response.token = observation.token
        if success:
            response.opt.observe = observation.next_seq()
        response.mid = self._transmitter.next_mid(peer.key)
        if confirmable:
            response.mtype = n.CON
            observation.in_flight = True
            observation.last_confirmable = now
            self._transmitter.send_confirmable(
                peer,
                response.mid,
                codec.encode(response),
                lambda outcome: observations.settled(observation, outcome),
            )
        else:
            response.mtype = n.NON
            peer.send(codec.encode(response))
            observations.sent_non(peer.key, response.mid, observation)
        if not success:
            observations.cancel(observation)
