"""The built-in connectors pass the conformance kit and are found through their entry points,
as a third-party connector would be."""
from crmhub.plugins.conformance import ConnectorConformance
from crmhub.plugins.forms import FormsConnector
from crmhub.plugins.host import ConnectorHost, make_plugin_manager
from crmhub.plugins.tilda import TildaConnector


class TestFormsConformance(ConnectorConformance):
    connector_class = FormsConnector
    settings = {"honeypot_field": "website", "rate_limit_per_minute": 1000, "forms": {
        "contact-us": {"title": "Contact us", "secret": "form-secret"}}}


class TestMappedFormFromAllowedOriginsConformance(ConnectorConformance):
    """Samples follow the form's own field names; an origin check alone makes them signed."""

    connector_class = FormsConnector
    settings = {"forms": {"callback": {
        "fields": {"name": "fio", "phone": ["tel", "tel2"], "email": "mail",
                   "message": "comment"},
        "allowed_origins": ["https://shop.example"], "redirect": "https://shop.example/thanks"}}}


class TestTildaConformance(ConnectorConformance):
    connector_class = TildaConnector
    settings = {"api_key": "tilda-key"}


class TestTildaWithoutKeyConformance(ConnectorConformance):
    connector_class = TildaConnector


def test_entry_points_register_both_builtin_connectors():
    host = ConnectorHost({}, plugin_manager=make_plugin_manager())
    assert isinstance(host.connectors["forms"].instance, FormsConnector)
    assert isinstance(host.connectors["tilda"].instance, TildaConnector)
    plugins = {c["name"]: c["plugin"] for c in host.describe()}
    assert (plugins["forms"], plugins["tilda"]) == ("forms", "tilda")
