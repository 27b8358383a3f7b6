"""The Mango Office connector (``/hooks/mango``), registered through the ``crmhub.connectors``
entry point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.mango.connector import MangoConnector

__all__ = ["MangoConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(MangoConnector)
