"""The connector plugin API of crmhub: the one module that declares every hook.

A plugin is a module or object with functions marked ``@hookimpl`` (``from crmhub.plugins
import hookimpl``), published under the entry-point group ``crmhub.connectors``. Hooks are
always called with keyword arguments; an implementation may accept fewer arguments than the
spec lists (new arguments are added over time, none is ever removed or renamed).
"""
import pluggy

PROJECT = "crmhub"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def crmhub_register_connectors(register):
    """Declare the connectors a plugin provides.

    :param register: callable; call ``register(ConnectorClass)`` once for each connector. The
        class subclasses :class:`crmhub.plugins.api.Connector` and sets ``name`` (the URL
        segment under ``/hooks/``), ``api_version`` and ``routes``. Registering two connectors
        under one name is an error reported at start-up.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def crmhub_prepare_event(connector, event_type, event):
    """Adjust a normalized event after its connector produced it and before it is validated
    against its contract and published (for example: add a tag, fill a default form name).

    :param connector: name of the connector that produced the event.
    :param event_type: name of the event in :mod:`crmhub.contracts.events`.
    :param event: the event as a dict (wire form, may be changed in place).
    :returns: ``None`` to keep the event as it is, or a dict that replaces it. Every plugin's
        result is applied in turn, the last registered plugin first.
    """
