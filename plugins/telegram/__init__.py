"""The Telegram connector (``/hooks/telegram/<bot>``), registered through the
``crmhub.connectors`` entry point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.telegram.connector import TelegramConnector

__all__ = ["TelegramConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(TelegramConnector)
