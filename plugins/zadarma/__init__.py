"""The Zadarma virtual PBX connector (``/hooks/zadarma``), registered through the
``crmhub.connectors`` entry point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.zadarma.connector import ZadarmaConnector

__all__ = ["ZadarmaConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(ZadarmaConnector)
