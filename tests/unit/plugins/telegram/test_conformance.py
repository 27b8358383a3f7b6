"""The Telegram connector passes the conformance kit."""
from crmhub.plugins import telegram
from crmhub.plugins.conformance import ConnectorConformance
from crmhub.plugins.telegram import TelegramConnector


class TestTelegramConformance(ConnectorConformance):
    connector_class = TelegramConnector
    settings = {"bots": {"shop": {"token": "123:abc", "secret_token": "s3cret-token"}}}
    plugin = telegram

