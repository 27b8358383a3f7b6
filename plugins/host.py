"""The connector host: discovers connector plugins, configures them, routes webhooks to them.

Discovery follows the entry-point group ``crmhub.connectors``; crmhub's own connectors are
registered there by its packaging exactly as a third-party package would do it. A connector
is disabled by ``DISABLED_CONNECTORS`` (config list or comma-separated env
``CRMHUB_DISABLED_CONNECTORS``) or ``CONNECTORS.<name>.enabled: false``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pluggy
import structlog
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from crmhub.plugins import hookspecs
from crmhub.plugins.api import (
    API_VERSION,
    Connector,
    UnknownTarget,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)

log = structlog.get_logger(__name__)
ENTRY_POINT_GROUP = "crmhub.connectors"
HOOK_PREFIX = "/hooks"


class ConnectorConfigError(Exception):
    pass


class MethodNotAllowedError(WebhookError):
    status, code = 405, "method_not_allowed"


@dataclass
class LoadedConnector:
    name: str
    instance: Connector
    plugin: str

    def describe(self) -> dict:
        cls = type(self.instance)
        return {
            "name": self.name,
            "title": cls.title or self.name,
            "version": cls.version,
            "api_version": cls.api_version,
            "plugin": self.plugin,
            "routes": [{"path": f"{HOOK_PREFIX}/{self.name}{r.path}", "methods": list(r.methods),
                        "description": r.description} for r in cls.routes],
        }


def make_plugin_manager(disabled=()) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def disabled_connectors(config: dict) -> set[str]:
    names = set(config.get("DISABLED_CONNECTORS") or [])
    names |= {n.strip() for n in os.environ.get("CRMHUB_DISABLED_CONNECTORS", "").split(",")
              if n.strip()}
    for name, settings in (config.get("CONNECTORS") or {}).items():
        if isinstance(settings, dict) and settings.get("enabled") is False:
            names.add(name)
    return names


def _api_compatible(version: str) -> bool:
    return str(version).split(".")[0] == API_VERSION.split(".")[0]


class ConnectorHost:
    """Loaded connectors and their routes."""

    def __init__(self, config: dict, plugin_manager: pluggy.PluginManager | None = None):
        self.config = config
        disabled = disabled_connectors(config)
        self.pm = plugin_manager or make_plugin_manager(disabled)
        self.connectors: dict[str, LoadedConnector] = {}
        settings = config.get("CONNECTORS") or {}

        def register(connector_cls, _plugin=None):
            if not (isinstance(connector_cls, type) and issubclass(connector_cls, Connector)):
                raise ConnectorConfigError(f"{connector_cls!r} is not a Connector subclass")
            name = connector_cls.name
            if not name:
                raise ConnectorConfigError(f"{connector_cls.__qualname__} has no name")
            if not _api_compatible(connector_cls.api_version):
                raise ConnectorConfigError(
                    f"connector {name} targets API {connector_cls.api_version}, "
                    f"this crmhub provides {API_VERSION}")
            if name in disabled:
                return
            if name in self.connectors:
                raise ConnectorConfigError(f"two connectors are named {name!r}")
            instance = connector_cls(settings.get(name) or {})
            self.connectors[name] = LoadedConnector(name, instance, _plugin or "?")

        for impl in self.pm.hook.crmhub_register_connectors.get_hookimpls():
            impl.function(register=lambda cls, _p=impl.plugin_name: register(cls, _p))
        self.url_map = Map([
            Rule(f"{HOOK_PREFIX}/{name}{route.path}", endpoint=(name, route.handler),
                 methods=list(route.methods))
            for name, loaded in self.connectors.items()
            for route in type(loaded.instance).routes
        ], strict_slashes=False)

    def describe(self) -> list[dict]:
        return [c.describe() for c in self.connectors.values()]

    def handle(self, request: WebhookRequest) -> tuple[str, WebhookResult]:
        """Route a webhook to its connector; returns (connector name, result)."""
        adapter = self.url_map.bind("hub", "/")
        try:
            (name, handler), args = adapter.match(request.path, method=request.method)
        except NotFound:
            raise UnknownTarget(f"no connector route for {request.path}") from None
        except MethodNotAllowed as exc:
            raise MethodNotAllowedError(
                f"{request.method} not allowed here; use {', '.join(exc.valid_methods or [])}"
            ) from None
        connector = self.connectors[name].instance
        result = getattr(connector, handler)(request, **args)
        if not isinstance(result, WebhookResult):
            raise TypeError(f"connector {name}.{handler} returned {type(result).__name__}, "
                            "not a WebhookResult")
        result.events = [(event_type, self.prepare(name, event_type, event))
                         for event_type, event in result.events]
        return name, result

    def prepare(self, connector: str, event_type: str, event: dict) -> dict:
        for replacement in self.pm.hook.crmhub_prepare_event(
                connector=connector, event_type=event_type, event=event):
            if replacement is not None:
                event = replacement
        return event
