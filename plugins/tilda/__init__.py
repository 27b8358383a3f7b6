"""The Tilda connector (``/hooks/tilda``), registered through the ``crmhub.connectors`` entry
point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.tilda.connector import TildaConnector

__all__ = ["TildaConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(TildaConnector)
