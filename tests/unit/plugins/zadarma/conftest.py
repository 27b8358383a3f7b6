"""Fixtures of the Zadarma connector tests: a host with a known secret, a way to post signed
notifications to it, and the fake Zadarma API server."""
import pytest
from unit.plugins.zadarma.payloads import SECRET

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.conformance import host_for
from crmhub.plugins.zadarma import ZadarmaConnector
from crmhub.plugins.zadarma.fake_api import FakeZadarmaApi
from crmhub.plugins.zadarma.simulator import notification


@pytest.fixture
def host():
    return host_for(ZadarmaConnector, {"api_key": "test-key", "api_secret": SECRET})


@pytest.fixture
def send(host):
    """``send(event, fields)``: the WebhookResult of a correctly signed notification."""
    def send_to(event, fields, *, secret=SECRET, to=None, remote_addr="185.45.152.42"):
        request = notification(event, fields, secret=secret).request(remote_addr)
        return (to or host).handle(request)[1]

    return send_to


@pytest.fixture
def signal_of(send):
    """``signal_of(event, fields)``: the one call_signal a notification produces, loaded."""
    def one_signal(event, fields, **kwargs):
        result = send(event, fields, **kwargs)
        [(event_type, event_body)] = result.events
        assert event_type == "call_signal"
        return CallSignalSchema().load(event_body)

    return one_signal


@pytest.fixture
def fake_api():
    with FakeZadarmaApi() as fake:
        yield fake
