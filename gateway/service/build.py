# -*- test-case-name: tests.service.test_build -*-
"""
Assembling the service layer: the one place that wires store, cache and
services together.

 - L{open_services}C{(reactor, backend, path)}: the store C{[storage]}
   names (L{gateway.store.backends.open_store}), password hashing on the
   reactor's thread pool;
 - L{memory_services}C{(clock)}: the in-memory store, hashing inline; the
   Deferred has fired when it returns (for tests).

Both take the C{[limits]} section (L{ServiceLimits}), which bounds the
attribute and telemetry services and sets the credential guard's budget.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool

from gateway.service.activity import DeviceActivity
from gateway.service.attributes import AttributeService
from gateway.service.claiming import ClaimingService
from gateway.service.client_rpc import ClientRpc, ForwardRpc
from gateway.service.cluster import ClusterMembership
from gateway.service.coherence import Coherence
from gateway.service.credentials import (
    CredentialCache,
    RunBlocking,
    run_synchronously,
)
from gateway.service.devices import DeviceServices
from gateway.service.downlinks import HeldAttributes
from gateway.service.events import EventLog
from gateway.service.guard import CredentialGuard
from gateway.service.heard import HeardRecorder
from gateway.service.limits import ServiceLimits
from gateway.service.ota import OtaService
from gateway.service.passwords import PasswordHasher
from gateway.service.power import PowerDefaults
from gateway.service.provisioning import ProvisioningService
from gateway.service.publish import PublishService
from gateway.service.registry import DeviceRegistry
from gateway.service.rpc import RpcService, RpcSettings
from gateway.service.scheduler import PowerScheduler
from gateway.service.schemas import SchemaCache
from gateway.service.telemetry import TelemetryService
from gateway.service.uplinks import RetryAfter, fixed_retry_after
from gateway.store.backends import open_store
from gateway.store.blobs import BlobDirectory, IBlobStore, MemoryBlobs
from gateway.store.changes import Change, LocalChangeFeed
from gateway.store.interfaces import (
    IChangeFeed,
    ICommandQueue,
    IHeardLog,
    INodeTable,
    IOutbox,
    IPackageStore,
    IStore,
)
from gateway.store.memory import MemoryStore
from gateway.store.nodes import LocalNodes
from gateway.upstream.events import EventFactory, EventShape

__all__ = ["Downlinks", "Services", "build_services", "open_services", "memory_services"]

#: The C{[limits]} defaults (the bounds are immutable, so one value serves all).
DEFAULT_LIMITS = ServiceLimits()


@attrs.frozen
class Downlinks:
    """
    How downlinks are held and sent: the C{[rpc]} queue settings, the
    C{[power]} defaults, and what answers client-side RPCs the gateway does
    not (C{forward}, within C{timeout} seconds; none: they get no answer).
    """

    queue: RpcSettings = attrs.field(factory=RpcSettings)
    power: PowerDefaults = attrs.field(factory=PowerDefaults)
    forward: Optional[ForwardRpc] = None
    timeout: float = 10.0


DEFAULT_DOWNLINKS = Downlinks()

#: The instance name in events' C{source} when none is given: the host's name.
DEFAULT_INSTANCE = socket.gethostname()


@attrs.frozen
class Services:
    """
    Everything the API needs, built and loaded; the dialects get only
    C{devices}, the scheduler subscribes to C{activity}.
    """

    store: IStore
    #: The same backend, as the durable outbox of upstream events.
    outbox: IOutbox
    credentials: CredentialCache
    registry: DeviceRegistry
    attributes: AttributeService
    telemetry: TelemetryService
    provisioning: ProvisioningService
    claiming: ClaimingService
    activity: DeviceActivity
    guard: CredentialGuard
    devices: DeviceServices
    events: EventLog
    scheduler: PowerScheduler
    rpc: RpcService
    held: HeldAttributes
    ota: OtaService
    #: What the other nodes sharing the store commit (nothing on one process's store).
    changes: IChangeFeed
    #: This node among those sharing the store.
    cluster: ClusterMembership
    _unfollow: Callable[[], None]
    #: Records when devices were heard, on a store several nodes share.
    heard: Optional[HeardRecorder] = None

    def close(self) -> "Deferred[None]":
        """Stop the heartbeat and downlink timers, finish queued writes, close the store."""
        self._unfollow()
        self.cluster.stop()
        self.rpc.stop()
        self.held.stop()
        self.scheduler.stop()

        async def run() -> None:
            if self.heard is not None:
                await self.heard.stop()
            await self.store.close()

        return Deferred.fromCoroutine(run())


def build_services(
    store: IStore,
    clock: IReactorTime,
    hasher: Optional[PasswordHasher] = None,
    run_blocking: RunBlocking = run_synchronously,
    new_token: Optional[Callable[[], str]] = None,
    limits: ServiceLimits = DEFAULT_LIMITS,
    instance: str = DEFAULT_INSTANCE,
    retry_after: RetryAfter = fixed_retry_after,
    downlinks: Downlinks = DEFAULT_DOWNLINKS,
    shapes: Mapping[str, EventShape] | None = None,
    blobs: IBlobStore | None = None,
    heartbeat_interval: float = 5.0,
) -> "Deferred[Services]":
    """
    Wire the services over an open C{store}: load the credential cache,
    make sure the C{default} profile exists, reload the RPC queue, and
    follow the other nodes' changes (the heartbeat starts with
    C{services.cluster.start()}, once the node serves).

    @param instance: names this gateway node in the upstream events'
        C{source} and among the nodes (C{[cluster] node_id}).
    @param heartbeat_interval: seconds between the node's heartbeats.
    @param retry_after: seconds until a full outbox is expected to have
        room (the Max-Age of a refused uplink).
    @param shapes: the L{EventShape} of each enabled dialect that has its own.
    @param blobs: where OTA package bodies are kept (default: in memory).
    """

    async def build() -> Services:
        changes = IChangeFeed(store, None) or LocalChangeFeed()
        # Changes heard while loading are followed once everything is built.
        early: list[Change] = []
        stop_early = changes.subscribe(early.append)
        cache = await CredentialCache.load(store, hasher, run_blocking)
        extra: dict[str, Any] = {}
        if new_token is not None:
            extra["new_token"] = new_token
        registry = DeviceRegistry(store, cache, clock, **extra)
        await registry.ensure_default_profile()
        events = EventFactory(instance, shapes=dict(shapes or {}))
        attributes = AttributeService(store, cache, clock, events, retry_after, limits)
        telemetry = TelemetryService(store, cache, clock, events, retry_after, limits)
        provisioning = ProvisioningService(
            store, registry, attributes, clock, events, retry_after
        )
        claiming = ClaimingService(store, cache, clock, events, retry_after)
        activity = DeviceActivity(clock)
        scheduler = PowerScheduler(clock, cache, downlinks.power)
        activity.subscribe(scheduler.activity)
        heard_log = IHeardLog(store, None)
        heard = None
        if heard_log is not None:
            heard = HeardRecorder(heard_log, scheduler, clock)
            activity.subscribe(heard.activity)
            await heard.restore()
        rpc = RpcService(
            store, ICommandQueue(store), cache, clock, events, scheduler, downlinks.queue,
            retry_after,
        )
        await rpc.start()
        held = HeldAttributes(attributes, scheduler)
        held.start()
        ota = OtaService(
            store, IPackageStore(store), blobs if blobs is not None else MemoryBlobs(),
            attributes, cache, clock,
        )
        coherence = Coherence(store, cache, scheduler, attributes, rpc, heard)
        stop_early()
        unfollow = changes.subscribe(coherence.changed)
        for change in early:
            coherence.changed(change)
        cluster = ClusterMembership(
            INodeTable(store, None) or LocalNodes(), clock, instance, heartbeat_interval
        )
        guard = CredentialGuard(
            clock,
            limits.wrong_credentials_per_source,
            limits.wrong_credentials_refill,
            limits.max_sources,
        )
        return Services(
            store=store,
            outbox=IOutbox(store),
            credentials=cache,
            registry=registry,
            attributes=attributes,
            telemetry=telemetry,
            provisioning=provisioning,
            claiming=claiming,
            activity=activity,
            guard=guard,
            devices=DeviceServices(
                cache, telemetry, attributes, claiming, provisioning, activity, guard,
                held, rpc, ClientRpc(clock, downlinks.forward, downlinks.timeout),
                PublishService(store, cache, clock, events, retry_after), ota,
                SchemaCache(cache.profile),
            ),
            events=EventLog(IOutbox(store), clock),
            scheduler=scheduler,
            rpc=rpc,
            held=held,
            ota=ota,
            changes=changes,
            cluster=cluster,
            unfollow=unfollow,
            heard=heard,
        )

    return Deferred.fromCoroutine(build())


def open_services(
    reactor: Any,
    backend: str,
    path: str,
    hasher: Optional[PasswordHasher] = None,
    limits: ServiceLimits = DEFAULT_LIMITS,
    durability: str = "power-loss",
    outbox_limit: Optional[int] = None,
    retry_after: RetryAfter = fixed_retry_after,
    downlinks: Downlinks = DEFAULT_DOWNLINKS,
    shapes: Mapping[str, EventShape] | None = None,
    ota_dir: Optional[str] = None,
    instance: str = DEFAULT_INSTANCE,
    heartbeat_interval: float = 5.0,
) -> "Deferred[Services]":
    """
    Open the store (C{[storage] backend}, C{path}, its database file, and
    C{durability}; an outbox of at most C{outbox_limit} events) and build
    the service layer on it (C{retry_after}, C{downlinks}, C{instance},
    C{heartbeat_interval}: see L{build_services}); OTA package bodies are
    files in C{ota_dir} (default: in memory).

    @param reactor: provides IReactorTime, IReactorFromThreads and
        IReactorThreads (the real reactor, from C{makeService}).
    """

    def run_blocking(fn: Callable[[], Any]) -> "Deferred[Any]":
        return deferToThreadPool(reactor, reactor.getThreadPool(), fn)

    async def build() -> Services:
        store = await open_store(reactor, backend, path, durability, outbox_limit)
        try:
            return await build_services(
                store, reactor, hasher, run_blocking, limits=limits, retry_after=retry_after,
                downlinks=downlinks, shapes=shapes, instance=instance,
                heartbeat_interval=heartbeat_interval,
                blobs=None if ota_dir is None else BlobDirectory(Path(ota_dir)),
            )
        except BaseException:
            await store.close()
            raise

    return Deferred.fromCoroutine(build())


def memory_services(
    clock: IReactorTime,
    hasher: Optional[PasswordHasher] = None,
    limits: ServiceLimits = DEFAULT_LIMITS,
    downlinks: Downlinks = DEFAULT_DOWNLINKS,
    shapes: Mapping[str, EventShape] | None = None,
) -> "Deferred[Services]":
    """The service layer over a fresh L{MemoryStore} (already fired)."""
    return build_services(
        MemoryStore(), clock, hasher, limits=limits, downlinks=downlinks, shapes=shapes
    )
