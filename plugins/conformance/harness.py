"""A ConnectorHost holding only the connectors under test: no entry points, no built-ins."""
from __future__ import annotations

import pluggy

from crmhub.plugins import hookimpl, hookspecs
from crmhub.plugins.api import Connector
from crmhub.plugins.host import ConnectorHost


class ConnectorPlugin:
    """A plugin object registering one connector class, as a package's module would."""

    def __init__(self, connector_class: type[Connector]):
        self.connector_class = connector_class

    @hookimpl
    def crmhub_register_connectors(self, register):
        register(self.connector_class)


def plugin_manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def host_for(connector_class: type[Connector], settings: dict | None = None,
             plugin: object | None = None) -> ConnectorHost:
    """A real ConnectorHost with ``connector_class`` (registered by ``plugin``, by default a
    ConnectorPlugin) configured with ``settings`` as its ``CONNECTORS`` block."""
    pm = plugin_manager(plugin or ConnectorPlugin(connector_class))
    return ConnectorHost({"CONNECTORS": {connector_class.name: settings or {}}},
                         plugin_manager=pm)
