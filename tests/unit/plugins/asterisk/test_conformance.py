"""The conformance kit on the Asterisk connector, and its registration.

The kit is written for webhooks; Asterisk's events come over AMI (test_listen.py), so its one
sample is the status page: no events, nothing to sign. The forgery check skips for want of a
signed sample, and the idempotency checks hold vacuously (no events)."""
import pytest

from crmhub.plugins import asterisk
from crmhub.plugins.asterisk import AsteriskConnector
from crmhub.plugins.conformance import ConnectorConformance, host_for


class TestAsteriskConformance(ConnectorConformance):
    connector_class = AsteriskConnector
    settings = {"host": "127.0.0.1", "username": "crmhub", "secret": "secret"}
    plugin = asterisk


def test_it_is_a_listening_pbx_connector_that_places_calls_without_recordings():
    assert AsteriskConnector.listens()
    assert AsteriskConnector.supports_calls and not AsteriskConnector.supports_recordings
    [described] = host_for(AsteriskConnector, {}, asterisk).describe()
    assert [r["path"] for r in described["routes"]] == ["/hooks/asterisk/status"]


def test_defaults():
    connector = AsteriskConnector({})
    assert (connector.port, connector.timezone, connector.internal_context,
            connector.channel_template, connector.reconnect_max_seconds) == (
        5038, "Europe/Moscow", "from-internal", "PJSIP/{extension}", 30.0)
    assert connector.inbound_contexts == ("from-trunk", "from-pstn", "from-external")
    assert AsteriskConnector({"inbound_contexts": "did-in, trunk-in"}).inbound_contexts == (
        "did-in", "trunk-in")


@pytest.mark.parametrize("settings, error", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"channel_template": "PJSIP/{ext}"}, "channel_template")])
def test_settings_mistakes_fail_at_start_up(settings, error):
    with pytest.raises(ValueError, match=error):
        AsteriskConnector(settings)
