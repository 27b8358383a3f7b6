"""The conformance kit is usable from outside crmhub: a third-party connector registered by its
own plugin object passes it, and connectors that break the rules fail the right checks."""
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from unit.plugins.conformance.acme_connector import AcmeConnector, AcmePlugin

from crmhub.plugins.conformance import ConnectorConformance

KIT_CHECKS = {name for name in dir(ConnectorConformance) if name.startswith("test_")}


class TestAcmeConformance(ConnectorConformance):
    connector_class = AcmeConnector
    plugin = AcmePlugin()
    settings = {"secret": "acme-secret"}


OUTSIDE_PACKAGE_TESTS = '''
    import sys
    import uuid

    sys.path.insert(0, {acme_dir!r})

    from acme_connector import AcmeConnector, AcmePlugin

    from crmhub.plugins import hookimpl
    from crmhub.plugins.api import (BadPayload, Connector, Route, Sample, WebhookError,
                                    WebhookResult, make_request)
    from crmhub.plugins.conformance import ConnectorConformance, ConnectorPlugin


    class LeakyConnector(Connector):
        """Trusts every caller, publishes even a handshake, and emits half-built events under
        a fresh key each time (or none at all)."""

        name = "leaky"
        routes = (Route("", "receive"),)

        def receive(self, request):
            event = {{"connector": "leaky"}}
            if request.body != b"test=test":
                event["idempotency_key"] = uuid.uuid4().hex
            return WebhookResult(events=[("form_submitted", event)])

        def conformance_samples(self):
            return [Sample("lead", make_request(path="/hooks/leaky", headers={{"X-Token": "t"}}),
                           ["form_submitted"]),
                    Sample("handshake", make_request(path="/hooks/leaky", body="test=test"), [],
                           signed=False)]

        def forge(self, sample):
            return Sample("no token", make_request(path="/hooks/leaky"), [])

        def bad_samples(self):
            return [Sample("garbage", make_request(path="/hooks/leaky", body="garbage"), [])]


    class SloppyConnector(Connector):
        """Routes to a handler it never wrote and offers no samples."""

        name = "sloppy"
        routes = (Route("", "receive"),)


    class Unavailable(WebhookError):
        status, code = 503, "unavailable"


    class MuddledConnector(Connector):
        """Refuses a missing token as a bad payload, and bad input as if it were down."""

        name = "muddled"
        routes = (Route("", "receive"),)

        def receive(self, request):
            if request.headers.get("X-Token") != "t":
                raise BadPayload("token?")
            if request.body:
                raise Unavailable("try later")
            return WebhookResult()

        def conformance_samples(self):
            return [Sample("ping", make_request(path="/hooks/muddled", headers={{"X-Token": "t"}}),
                           [])]

        def forge(self, sample):
            return Sample("no token", make_request(path="/hooks/muddled"), [])

        def bad_samples(self):
            return [Sample("junk", make_request(path="/hooks/muddled", body="junk",
                                                headers={{"X-Token": "t"}}), [])]


    class TestAcme(ConnectorConformance):
        connector_class = AcmeConnector
        plugin = AcmePlugin()
        settings = {{"secret": "acme-secret"}}


    class TestLeaky(ConnectorConformance):
        connector_class = LeakyConnector


    class TestSloppy(ConnectorConformance):
        connector_class = SloppyConnector
        plugin = ConnectorPlugin(SloppyConnector)


    class TestMuddled(ConnectorConformance):
        connector_class = MuddledConnector


    def test_the_pytest_plugin_provides_connector_host_for(connector_host_for):
        host = connector_host_for(AcmeConnector, {{"secret": "s"}}, plugin=AcmePlugin())
        assert list(host.connectors) == ["acme"]
'''


@pytest.fixture(scope="module")
def outside_run(tmp_path_factory) -> dict[tuple[str, str], str]:
    """Run the kit in a separate pytest process, as a connector package's CI would; returns
    ``{(class, test): outcome}``."""
    root = tmp_path_factory.mktemp("acme_package")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_acme.py").write_text(textwrap.dedent(OUTSIDE_PACKAGE_TESTS.format(
        acme_dir=str(Path(__file__).parent))))
    report = root / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={report}", "--rootdir", str(root), "-c", str(root / "pytest.ini"),
                    str(root / "test_acme.py")], cwd=root, capture_output=True, timeout=120)
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        outcome = next((child.tag for child in case
                        if child.tag in ("failure", "error", "skipped")), "passed")
        outcomes[(case.get("classname").rsplit(".", 1)[-1], case.get("name"))] = outcome
    return outcomes


def results(outcomes, cls) -> dict[str, str]:
    return {test: outcome for (name, test), outcome in outcomes.items() if name == cls}


def test_a_third_party_connector_passes_every_check_from_outside(outside_run):
    assert results(outside_run, "TestAcme") == dict.fromkeys(KIT_CHECKS, "passed")


def test_the_pytest_plugin_fixture_builds_a_host(outside_run):
    assert outside_run[("test_acme", "test_the_pytest_plugin_provides_connector_host_for")] == (
        "passed")


def test_a_connector_that_trusts_anyone_and_breaks_contracts_fails_those_checks(outside_run):
    failed = {test for test, outcome in results(outside_run, "TestLeaky").items()
              if outcome == "failure"}
    assert failed == {"test_samples_produce_exactly_the_expected_events",
                      "test_sample_events_load_with_their_contract",
                      "test_sample_events_carry_an_idempotency_key_or_event_id",
                      "test_a_redelivered_sample_keeps_its_idempotency_keys",
                      "test_forged_samples_are_refused",
                      "test_bad_samples_are_refused_with_a_4xx_and_a_message"}


def test_a_connector_without_handler_or_samples_fails_those_checks(outside_run):
    sloppy = results(outside_run, "TestSloppy")
    assert sloppy["test_every_route_handler_exists"] == "failure"
    assert sloppy["test_has_conformance_samples"] == "failure"
    assert sloppy["test_has_a_name_and_routes"] == "passed"


def test_refusals_with_the_wrong_status_fail_those_checks(outside_run):
    failed = {test for test, outcome in results(outside_run, "TestMuddled").items()
              if outcome == "failure"}
    assert failed == {"test_forged_samples_are_refused",
                      "test_bad_samples_are_refused_with_a_4xx_and_a_message"}
