"""The plugin API's guard rails: a misspelt or mis-declared hook fails at start-up, and the host
refuses connectors it cannot run, each with a message that says what to fix."""
import pluggy
import pytest

from crmhub.plugins import hookimpl
from crmhub.plugins.api import API_VERSION, Connector, Route, WebhookResult, make_request
from crmhub.plugins.host import ConnectorConfigError, ConnectorHost, make_plugin_manager


def bare_manager() -> pluggy.PluginManager:
    """The hook specs only, without the installed connectors."""
    from crmhub.plugins import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def plugin_registering(*classes):
    class Plugin:
        @hookimpl
        def crmhub_register_connectors(self, register):
            for cls in classes:
                register(cls)

    return Plugin()


class Echo(Connector):
    name = "echo"
    routes = (Route("", "receive"),)

    def receive(self, request):
        return WebhookResult(body={"echo": True})


# -- the plugin manager ---------------------------------------------------------------------

def test_impl_of_an_unknown_hook_is_rejected():
    class Typo:
        @hookimpl
        def crmhub_prepare_evnt(self, event):
            return None

    pm = make_plugin_manager()
    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'crmhub_prepare_evnt'"):
        pm.check_pending()


def test_impl_with_an_argument_the_spec_lacks_is_rejected():
    class Greedy:
        @hookimpl
        def crmhub_prepare_event(self, event, tenant):
            return None

    with pytest.raises(pluggy.PluginValidationError, match="tenant"):
        bare_manager().register(Greedy(), name="greedy")


def test_impl_may_take_fewer_arguments_than_the_spec():
    class Tagger:
        @hookimpl
        def crmhub_prepare_event(self, event):
            event.setdefault("tags", []).append("seen")

    pm = bare_manager()
    pm.register(Tagger(), name="tagger")
    pm.check_pending()
    event = {}
    assert pm.hook.crmhub_prepare_event(connector="echo", event_type="form_submitted",
                                        event=event) == []
    assert event == {"tags": ["seen"]}


def test_hooks_are_called_with_keyword_arguments_only():
    pm = bare_manager()
    with pytest.raises(TypeError):
        pm.hook.crmhub_prepare_event("echo", "form_submitted", {})


def test_installed_connectors_pass_check_pending():
    make_plugin_manager().check_pending()  # the built-in connectors implement only real hooks


# -- the connector host ---------------------------------------------------------------------

def host_with(*classes, config=None) -> ConnectorHost:
    pm = bare_manager()
    pm.register(plugin_registering(*classes), name="test-plugin")
    return ConnectorHost(config or {}, plugin_manager=pm)


def test_connector_for_another_major_api_version_is_refused():
    class Future(Echo):
        name = "future"
        api_version = "2.0"

    with pytest.raises(ConnectorConfigError) as info:
        host_with(Future)
    assert str(info.value) == f"connector future targets API 2.0, this crmhub provides {API_VERSION}"


def test_connector_for_another_minor_api_version_is_accepted():
    major = API_VERSION.split(".")[0]

    class Newer(Echo):
        name = "newer"
        api_version = f"{major}.99"

    host = host_with(Newer)
    assert host.describe()[0]["api_version"] == f"{major}.99"
    name, result = host.handle(make_request(method="POST", path="/hooks/newer"))
    assert (name, result.body) == ("newer", {"echo": True})


def test_class_that_is_not_a_connector_is_refused():
    class Stranger:
        name = "stranger"

    with pytest.raises(ConnectorConfigError, match="is not a Connector subclass"):
        host_with(Stranger)


def test_connector_without_a_name_is_refused():
    class Nameless(Echo):
        name = ""

    with pytest.raises(ConnectorConfigError, match="Nameless has no name"):
        host_with(Nameless)


def test_two_connectors_with_one_name_are_refused():
    class Twin(Echo):
        pass

    with pytest.raises(ConnectorConfigError, match="two connectors are named 'echo'"):
        host_with(Echo, Twin)


def test_disabled_connector_is_not_loaded():
    assert host_with(Echo, config={"DISABLED_CONNECTORS": ["echo"]}).connectors == {}
    assert list(host_with(Echo).connectors) == ["echo"]
