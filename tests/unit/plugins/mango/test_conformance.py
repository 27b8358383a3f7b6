"""The Mango connector passes the conformance kit, configured and not."""
from crmhub.plugins import mango
from crmhub.plugins.conformance import ConnectorConformance
from crmhub.plugins.mango import MangoConnector

# The doc's example key; the salt is ours (the doc shows none).
SETTINGS = {"api_key": "5f4dcc3b5aa765d61d8327deb882cf99", "api_salt": "test-salt"}


class TestMangoConformance(ConnectorConformance):
    connector_class = MangoConnector
    settings = SETTINGS
    plugin = mango


class TestUnconfiguredMangoConformance(ConnectorConformance):
    """Without key and salt only the connection check passes; everything else is 403."""

    connector_class = MangoConnector
