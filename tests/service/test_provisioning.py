"""
ThingsBoard provisioning semantics.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.errors import Unavailable
from gateway.domain.model import (
    AttributeScope,
    Credential,
    CredentialKind,
    Device,
    Profile,
    ProvisionStrategy,
    token_digest,
)
from gateway.service.build import Services, build_services
from gateway.service.interfaces import (
    IProvisioningService,
    ProvisionRequest,
    ProvisionStatus,
)
from gateway.store.memory import MemoryStore

from .conftest import FAST_HASHER, RecordingStore, failure, result


def _profile(services: Services, strategy: ProvisionStrategy, name: str = "p") -> None:
    result(
        services.registry.create_profile(
            Profile(name, provisioning=strategy, provision_key=f"{name}-key",
                    provision_secret=f"{name}-secret")
        )
    )


def _request(name: str = "dev", **kw: object) -> ProvisionRequest:
    return ProvisionRequest("p-key", "p-secret", device_name=name, **kw)  # type: ignore[arg-type]


def test_provides_interface(services: Services) -> None:
    """The provisioning service provides IProvisioningService."""
    assert verifyObject(IProvisioningService, services.provisioning)


def test_create_new(services: Services) -> None:
    """allow_create_new creates the device with the profile and returns a working token."""
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    r = result(services.provisioning.provision(_request()))
    assert r.status == ProvisionStatus.SUCCESS
    assert r.credentials_type == "ACCESS_TOKEN"
    assert r.device is not None and r.device.profile == "p"
    assert services.credentials.authenticate_token(r.credentials_value) == r.device
    state = result(services.attributes.get_attributes(r.device.id, AttributeScope.SERVER))
    assert [(a.key, a.value) for a in state] == [("provisionState", "provisioned")]


def test_given_token_used(services: Services) -> None:
    """A token in the request becomes the device's token."""
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    r = result(services.provisioning.provision(_request(token="MY_TOKEN")))
    assert r.status == ProvisionStatus.SUCCESS and r.credentials_value == "MY_TOKEN"


def test_twice_is_failure(services: Services) -> None:
    """Provisioning the same device twice gives FAILURE."""
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    assert result(services.provisioning.provision(_request())).status == ProvisionStatus.SUCCESS
    r = result(services.provisioning.provision(_request()))
    assert r.status == ProvisionStatus.FAILURE
    assert r.error_message() == "Failed to provision device!"


def test_wrong_secret_unknown_key_disabled(services: Services) -> None:
    """A wrong secret, an unknown key or a disabled profile give NOT_FOUND."""
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW, name="off")
    result(services.registry.update_profile(
        Profile("off", provision_key="off-key", provision_secret="off-secret")))
    for req in [
        ProvisionRequest("p-key", "nope", device_name="a"),
        ProvisionRequest("zz", "p-secret", device_name="a"),
        ProvisionRequest("off-key", "off-secret", device_name="a"),
        ProvisionRequest("", "", device_name="a"),
    ]:
        r = result(services.provisioning.provision(req))
        assert r.status == ProvisionStatus.NOT_FOUND
        assert r.error_message() == "Provision data was not found!"
    assert result(services.registry.list_devices()) == []


def test_check_pre_provisioned(services: Services) -> None:
    """check_pre_provisioned only provisions an existing device of that profile, once."""
    _profile(services, ProvisionStrategy.CHECK_PRE_PROVISIONED)
    assert result(services.provisioning.provision(_request())).status == ProvisionStatus.NOT_FOUND
    created = result(services.registry.create_device("dev", profile="p"))
    result(services.registry.create_device("other", profile="default"))
    r = result(services.provisioning.provision(_request()))
    assert r.status == ProvisionStatus.SUCCESS and r.device == created.device
    assert services.credentials.authenticate_token(created.access_token or "") is None
    assert services.credentials.authenticate_token(r.credentials_value) == created.device
    assert result(services.provisioning.provision(_request())).status == ProvisionStatus.FAILURE
    other = result(services.provisioning.provision(_request("other")))
    assert other.status == ProvisionStatus.NOT_FOUND


def test_token_conflict_and_other_types_fail(services: Services) -> None:
    """A token of another device, or a credentials type other than ACCESS_TOKEN, gives FAILURE."""
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    result(services.registry.create_device("x", access_token="TAKEN"))
    taken = result(services.provisioning.provision(_request(token="TAKEN")))
    assert taken.status == ProvisionStatus.FAILURE
    r = result(services.provisioning.provision(_request("y", credentials_type="X509_CERTIFICATE")))
    assert r.status == ProvisionStatus.FAILURE
    assert [d.name for d in result(services.registry.list_devices())] == ["x"]


def test_no_name_generates_one(services: Services) -> None:
    """Without deviceName a random device name is used."""
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    r = result(services.provisioning.provision(ProvisionRequest("p-key", "p-secret")))
    assert r.status == ProvisionStatus.SUCCESS and r.device is not None and r.device.name


def test_new_device_is_one_unit(recorded: Services, recording: RecordingStore) -> None:
    """A provisioned device, its token and its provisioned state are written in one unit."""
    _profile(recorded, ProvisionStrategy.ALLOW_CREATE_NEW)
    recording.units.clear()
    r = result(recorded.provisioning.provision(_request()))
    assert r.status == ProvisionStatus.SUCCESS
    assert recording.kinds() == [["CreateDevice", "PutCredential", "SetAttributes", "AppendEvent"]]


def test_failed_new_device_leaves_nothing(recorded: Services, recording: RecordingStore) -> None:
    """When the store refuses the token, no device, token or state of the new device is left."""
    _profile(recorded, ProvisionStrategy.ALLOW_CREATE_NEW)
    _token_held_elsewhere(recording, "TAKEN")
    r = result(recorded.provisioning.provision(_request(token="TAKEN")))
    assert r.status == ProvisionStatus.FAILURE
    assert [d.id for d in result(recording.list_devices())] == ["other"]
    assert result(recording.find_device("default", "dev")) is None


def test_failed_reprovisioning_keeps_the_old_token(
    recorded: Services, recording: RecordingStore
) -> None:
    """An existing device whose new token is refused keeps its old token and stays unprovisioned."""
    _profile(recorded, ProvisionStrategy.CHECK_PRE_PROVISIONED)
    created = result(recorded.registry.create_device("dev", profile="p"))
    _token_held_elsewhere(recording, "TAKEN")
    recording.units.clear()
    r = result(recorded.provisioning.provision(_request(token="TAKEN")))
    assert r.status == ProvisionStatus.FAILURE
    assert recording.kinds() == [["PutCredential", "SetAttributes", "AppendEvent"]]
    assert recorded.credentials.authenticate_token(created.access_token or "") == created.device
    assert result(recording.get_attributes(created.device.id, AttributeScope.SERVER)) == []
    assert result(recorded.provisioning.provision(_request())).status == ProvisionStatus.SUCCESS


def _token_held_elsewhere(store: RecordingStore, token: str) -> None:
    # Written past this gateway's cache, as another node would.
    result(store.create_device(Device("other", "other")))
    taken = Credential("other", CredentialKind.ACCESS_TOKEN, token_digest(token))
    result(store.put_credential(taken))


def test_full_outbox_is_unavailable_not_a_failure(clock: Clock) -> None:
    """With the outbox full, provisioning is Unavailable with the retry time, and keeps nothing."""
    store = MemoryStore(outbox_limit=0)
    services = result(build_services(store, clock, FAST_HASHER, retry_after=lambda: 7))
    _profile(services, ProvisionStrategy.ALLOW_CREATE_NEW)
    refused = failure(services.provisioning.provision(_request()), Unavailable).value
    assert isinstance(refused, Unavailable) and refused.retry_after == 7
    assert result(services.registry.list_devices()) == []
