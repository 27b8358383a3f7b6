"""The WhatsApp connector passes the conformance kit."""
from crmhub.plugins import whatsapp
from crmhub.plugins.conformance import ConnectorConformance
from crmhub.plugins.whatsapp import WhatsAppConnector

SETTINGS = {"app_secret": "app-secret", "verify_token": "verify-me", "access_token": "token",
            "phone_number_id": "1122334455667"}


class TestWhatsAppConformance(ConnectorConformance):
    connector_class = WhatsAppConnector
    settings = SETTINGS
    plugin = whatsapp


def test_entry_points_register_both_messenger_connectors():
    from crmhub.plugins.host import ConnectorHost, make_plugin_manager
    from crmhub.plugins.telegram import TelegramConnector

    host = ConnectorHost({}, plugin_manager=make_plugin_manager())
    assert isinstance(host.connectors["telegram"].instance, TelegramConnector)
    assert isinstance(host.connectors["whatsapp"].instance, WhatsAppConnector)
    described = {c["name"]: c for c in host.describe()}
    assert described["telegram"]["routes"][0]["path"] == "/hooks/telegram/<bot>"
    assert described["whatsapp"]["api_version"] == "1.3"
