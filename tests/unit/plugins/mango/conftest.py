"""Fixtures of the Mango connector's tests: a host holding only the connector, a helper that
posts a signed payload as Mango does, and the fake Mango API."""
import pytest

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.conformance import host_for
from crmhub.plugins.mango import MangoConnector
from crmhub.plugins.mango.fake_api import FakeMangoApi
from crmhub.plugins.mango.simulator import webhook

API_KEY = "5f4dcc3b5aa765d61d8327deb882cf99"  # the key of the documentation's examples
API_SALT = "test-salt"
SETTINGS = {"api_key": API_KEY, "api_salt": API_SALT}


@pytest.fixture
def host():
    return host_for(MangoConnector, SETTINGS)


@pytest.fixture
def send(host):
    """``send(path, payload)``: Mango's signed post of ``payload`` (dict or JSON text) to
    ``/hooks/mango<path>``; returns the WebhookResult or raises the WebhookError."""
    def send(path, payload, api_key=API_KEY, api_salt=API_SALT):
        return host.handle(webhook(path, payload, api_key, api_salt).request())[1]
    return send


@pytest.fixture
def signal(send):
    """``signal(path, payload)``: the one call_signal the post produces, checked against its
    contract, with the fields it leaves out as None (None when it produces none)."""
    def signal(path, payload):
        result = send(path, payload)
        assert result.status == 200 and result.body == {"success": True}
        if not result.events:
            return None
        [(event_type, event)] = result.events
        assert event_type == "call_signal"
        CallSignalSchema().load(event)
        return {**dict.fromkeys(CallSignalSchema().fields), **event}
    return signal


@pytest.fixture
def fake_mango():
    with FakeMangoApi(API_KEY, API_SALT) as fake:
        yield fake
