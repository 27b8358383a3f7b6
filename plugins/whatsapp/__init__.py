"""The WhatsApp Cloud API connector (``/hooks/whatsapp``), registered through the
``crmhub.connectors`` entry point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.whatsapp.connector import WhatsAppConnector

__all__ = ["WhatsAppConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(WhatsAppConnector)
