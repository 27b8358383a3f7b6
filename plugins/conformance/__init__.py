"""Conformance kit: the checks every crmhub connector must pass, as a reusable pytest suite.

A connector package subclasses it in its own tests::

    from crmhub.plugins.conformance import ConnectorConformance

    class TestMyConnector(ConnectorConformance):
        connector_class = MyConnector
        settings = {"secret": "test-secret"}   # its block of the CONNECTORS config
        plugin = None                          # or the plugin object that registers it

Every check runs the connector inside a real ConnectorHost (``host.handle``), fed with the
connector's own ``conformance_samples()``, ``forge()`` and ``bad_samples()``. Sample requests
carry the full webhook path, ``/hooks/<connector><route>``, as the gateway passes it.
"""
from __future__ import annotations

from typing import ClassVar

import pytest
from marshmallow import ValidationError

from crmhub.contracts.events import spec
from crmhub.plugins.api import (
    API_VERSION,
    Connector,
    Forbidden,
    Sample,
    Unauthorized,
    WebhookError,
    WebhookResult,
)
from crmhub.plugins.conformance.harness import ConnectorPlugin, host_for, plugin_manager
from crmhub.plugins.host import ConnectorHost

__all__ = ["ConnectorConformance", "ConnectorPlugin", "host_for", "plugin_manager"]


class ConnectorConformance:
    connector_class: ClassVar[type[Connector]]
    settings: ClassVar[dict] = {}
    plugin: ClassVar[object | None] = None

    # Helpers -----------------------------------------------------------------------------
    def conformance_host(self) -> ConnectorHost:
        return host_for(self.connector_class, self.settings, self.plugin)

    def loaded_connector(self, host: ConnectorHost) -> Connector:
        name = self.connector_class.name
        assert name in host.connectors, (
            f"the plugin did not register connector {name!r} (or it is disabled)")
        return host.connectors[name].instance

    def handle_sample(self, host: ConnectorHost, sample: Sample) -> WebhookResult:
        try:
            return host.handle(sample.request)[1]
        except WebhookError as exc:
            pytest.fail(f"sample {sample.name!r} was refused: {exc.status} {exc.message}")

    def samples(self, host: ConnectorHost) -> list[Sample]:
        return self.loaded_connector(host).conformance_samples()

    @staticmethod
    def refusal(host: ConnectorHost, sample: Sample) -> WebhookError:
        try:
            host.handle(sample.request)
        except WebhookError as exc:
            return exc
        pytest.fail(f"sample {sample.name!r} was accepted")

    # Checks ------------------------------------------------------------------------------
    def test_has_a_name_and_routes(self):
        cls = self.connector_class
        assert cls.name, f"{cls.__qualname__} sets no name"
        assert cls.routes, f"connector {cls.name} declares no routes"

    def test_api_major_version_matches_the_host(self):
        major = str(self.connector_class.api_version).split(".")[0]
        assert major == API_VERSION.split(".")[0], (
            f"connector targets API {self.connector_class.api_version}, "
            f"crmhub provides {API_VERSION}")

    def test_every_route_handler_exists(self):
        for route in self.connector_class.routes:
            assert callable(getattr(self.connector_class, route.handler, None)), (
                f"route {route.path!r} names handler {route.handler!r}, which is not a method")

    def test_its_plugin_registers_it_with_a_host(self):
        assert isinstance(self.loaded_connector(self.conformance_host()), self.connector_class)

    def test_has_conformance_samples(self):
        assert self.samples(self.conformance_host()), "conformance_samples() returned none"

    def test_samples_produce_exactly_the_expected_events(self):
        host = self.conformance_host()
        for sample in self.samples(host):
            produced = [event_type for event_type, _ in self.handle_sample(host, sample).events]
            assert produced == sample.expect, f"sample {sample.name!r}"

    def test_sample_events_load_with_their_contract(self):
        host = self.conformance_host()
        for sample in self.samples(host):
            for event_type, event in self.handle_sample(host, sample).events:
                try:
                    spec(event_type).schema().load(event)
                except ValidationError as exc:
                    pytest.fail(f"sample {sample.name!r}: {event_type} breaks its contract: "
                                f"{exc.messages}")

    def test_sample_events_carry_an_idempotency_key_or_event_id(self):
        host = self.conformance_host()
        for sample in self.samples(host):
            for event_type, event in self.handle_sample(host, sample).events:
                assert event.get("idempotency_key") or event.get("event_id"), (
                    f"sample {sample.name!r}: {event_type} has no idempotency_key or event_id")

    def test_a_redelivered_sample_keeps_its_idempotency_keys(self):
        host = self.conformance_host()
        for sample in self.samples(host):
            keys = [[event.get("idempotency_key") for _, event in
                     self.handle_sample(host, sample).events] for _ in range(2)]
            assert keys[0] == keys[1], f"sample {sample.name!r} handled twice"

    def test_forged_samples_are_refused(self):
        host = self.conformance_host()
        connector = self.loaded_connector(host)
        signed = [sample for sample in self.samples(host) if sample.signed]
        if not signed:
            pytest.skip("no signed samples: these settings authenticate nothing")
        for sample in signed:
            forged = connector.forge(sample)
            assert forged is not None, f"sample {sample.name!r} is signed but forge() gave None"
            refused = self.refusal(host, forged)
            assert isinstance(refused, (Unauthorized, Forbidden)), (
                f"forged {sample.name!r} refused with {refused.status}, not 401/403")

    def test_bad_samples_are_refused_with_a_4xx_and_a_message(self):
        host = self.conformance_host()
        bad = self.loaded_connector(host).bad_samples()
        if not bad:
            pytest.skip("the connector offers no bad_samples()")
        for sample in bad:
            refused = self.refusal(host, sample)
            assert 400 <= refused.status < 500, f"bad sample {sample.name!r}: {refused.status}"
            assert str(refused.message).strip(), f"bad sample {sample.name!r}: no message"
