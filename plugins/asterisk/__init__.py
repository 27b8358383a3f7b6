"""The Asterisk connector (AMI listener and click-to-call), registered through the
``crmhub.connectors`` entry point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.asterisk.connector import AsteriskConnector

__all__ = ["AsteriskConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(AsteriskConnector)
