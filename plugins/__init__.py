"""Connector plugins: built-in connectors and the API third-party connectors are written against.

Third-party connector packages import everything they need from here::

    from crmhub.plugins import hookimpl
    from crmhub.plugins.api import Connector, Route, WebhookResult, Unauthorized
"""
from crmhub.plugins.hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec"]
