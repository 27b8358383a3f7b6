"""The Zadarma connector passes the conformance kit, with and without an address allow-list,
and without a secret (only the URL check is then accepted)."""
from crmhub.plugins.conformance import ConnectorConformance
from crmhub.plugins.zadarma import ZadarmaConnector


class TestZadarmaConformance(ConnectorConformance):
    connector_class = ZadarmaConnector
    settings = {"api_key": "test-key", "api_secret": "test-secret"}


class TestZadarmaAllowedIpsConformance(ConnectorConformance):
    connector_class = ZadarmaConnector
    settings = {"api_secret": "test-secret", "allowed_ips": ["10.20.0.0/16", "185.45.152.42"],
                "timezone": "Asia/Yekaterinburg"}


class TestZadarmaOtherAllowedIpsConformance(ConnectorConformance):
    connector_class = ZadarmaConnector
    settings = {"api_secret": "test-secret", "allowed_ips": "10.20.0.0/16"}


class TestZadarmaWithoutSecretConformance(ConnectorConformance):
    connector_class = ZadarmaConnector
