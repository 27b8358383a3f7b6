"""pytest plugin of crmhub (entry point ``pytest11``): the ``connector_host_for`` fixture.

Importing crmhub here is deferred to the fixture: pytest loads entry-point plugins before any
conftest, and a project's conftest may need to run first (crmhub's monkey-patches eventlet).
"""
import pytest


@pytest.fixture
def connector_host_for():
    """``connector_host_for(MyConnector, settings, plugin=None)``: a real ConnectorHost holding
    only ``MyConnector``; route requests with ``host.handle(request)``."""
    from crmhub.plugins.conformance.harness import host_for

    return host_for
