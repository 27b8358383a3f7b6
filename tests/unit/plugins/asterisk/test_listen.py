"""listen() against the local AMI server: the real capture, synthesized calls, reconnects,
refused logins and stopping. Every emitted event is loaded with CallSignalSchema (conftest)."""
import time

from crmhub.plugins.api import make_request
from crmhub.plugins.asterisk import AsteriskConnector, connector, scenarios
from crmhub.plugins.asterisk.client import Backoff
from crmhub.plugins.conformance import host_for
from crmhub.testing import free_port


def kinds(signals, call_key=None):
    return [(s["kind"], s.get("extension"), s.get("outcome"), bool(s.get("final")))
            for s in signals if call_key is None or s["call_key"] == call_key]


def finals(running):
    return [s for s in running.signals if s.get("final")]


def test_the_real_capture_replayed_over_ami(pbx, listener):
    server = pbx()  # the capture is the default script
    running = listener(server.connector_settings())
    assert running.wait_for(lambda: len(running.signals) == 4)
    assert kinds(running.signals) == [
        ("ringing", "254", None, False), ("answered", "254", None, False),
        ("leg_ended", "254", None, False), ("finished", "254", "answered", False)]
    assert {s["call_key"] for s in running.signals} == {scenarios.CAPTURE_CALL_KEY}
    assert server.sent == len(server.script) == 748
    login = server.actions[0]
    assert (login["Action"], login["Username"], login["Events"]) == ("Login", "crmhub", "on")


def test_synthesized_calls_of_both_generations(pbx, listener):
    server = pbx(scenarios.answered_incoming() + scenarios.missed_incoming()
                 + scenarios.outgoing(command_id="cmd-7") + scenarios.answered_incoming_v11(),
                 line_end="\n")  # LF-only line ends, as some proxies send
    running = listener(server.connector_settings(timezone="Europe/Moscow"))
    assert running.wait_for(lambda: len(finals(running)) == 3)
    assert running.wait_for(lambda: kinds(running.signals, "1400000000.5")[-1:] == [
        ("finished", "101", "answered", False)])
    signals = running.signals
    assert kinds(signals, "1718000000.10") == [
        ("ringing", "101", None, False), ("answered", "101", None, False),
        ("leg_ended", "101", None, False), ("finished", "101", "answered", False),
        ("finished", "101", "answered", True)]
    incoming = [s for s in signals if s["call_key"] == "1718000000.10"]
    assert {(s["direction"], s["client_number"], s["line"]) for s in incoming} == {
        ("inbound", "79161234567", "74951234567")}
    final = incoming[-1]
    assert (final["started_at"], final["answered_at"], final["ended_at"], final["duration_s"]) == (
        "2024-06-10T09:00:00+00:00", "2024-06-10T09:00:07+00:00", "2024-06-10T09:01:07+00:00",
        60)
    assert kinds(signals, "1718000100.20") == [
        ("ringing", "101", None, False), ("ringing", "102", None, False),
        ("leg_ended", "101", None, False), ("leg_ended", "102", None, False),
        ("finished", "102", "missed", False), ("finished", "102", "missed", True)]
    outgoing = [s for s in signals if s["call_key"] == "1718000200.30"]
    assert {(s["direction"], s["command_id"]) for s in outgoing} == {("outbound", "cmd-7")}
    assert kinds(signals, "1400000000.5") == [
        ("ringing", "101", None, False), ("answered", "101", None, False),
        ("leg_ended", "101", None, False), ("finished", "101", "answered", False)]


def test_events_after_a_dropped_connection_arrive_after_the_reconnect(pbx, listener):
    script = scenarios.answered_incoming()
    server = pbx(script, drop_after=[5])
    running = listener(server.connector_settings())
    assert running.wait_for(lambda: len(finals(running)) == 1)
    assert server.logins == 2 and server.connections == 2
    assert kinds(running.signals) == [
        ("ringing", "101", None, False), ("answered", "101", None, False),
        ("leg_ended", "101", None, False), ("finished", "101", "answered", False),
        ("finished", "101", "answered", True)]
    assert running.wait_for(lambda: running.connector.connected)


def test_a_pbx_that_comes_up_late_is_reached_within_the_backoff_limit(pbx, listener):
    port = free_port()
    running = listener({"host": "127.0.0.1", "port": port, "username": "crmhub",
                        "secret": "secret", "reconnect_max_seconds": 0.5})
    time.sleep(1.5)  # several refused attempts: the delay has reached its limit
    assert not running.connector.connected
    up_at = time.monotonic()
    server = pbx(scenarios.answered_incoming(), port=port)
    assert running.wait_for(lambda: server.logins == 1, timeout=3)
    assert time.monotonic() - up_at < 0.5 + 0.5  # the limit, plus time to connect


def test_backoff_doubles_up_to_its_limit_and_restarts_after_a_success():
    backoff = Backoff(0.5, 30)
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 0.5


def test_a_refused_login_is_retried_without_crashing(pbx, listener):
    server = pbx(scenarios.answered_incoming(), secret="right")
    running = listener(server.connector_settings(secret="wrong", reconnect_max_seconds=0.5))
    assert running.wait_for(lambda: server.failed_logins >= 3)
    assert running.thread.is_alive() and not running.connector.connected
    assert running.signals == [] and server.sent == 0


def test_stopping_ends_listen_promptly_when_idle_and_when_waiting_to_retry(pbx, listener):
    server = pbx(scenarios.answered_incoming())
    connected = listener(server.connector_settings())
    assert connected.wait_for(lambda: len(finals(connected)) == 1)
    assert connected.stop() < 1.0
    assert server.wait_for(lambda: any(a["Action"] == "Logoff" for a in server.actions))
    retrying = listener({"host": "127.0.0.1", "port": free_port(), "username": "u",
                         "secret": "s", "reconnect_max_seconds": 30})
    time.sleep(1.0)
    assert retrying.stop() < 1.0


def test_an_idle_session_is_kept_alive_with_ping(pbx, listener, monkeypatch):
    monkeypatch.setattr(connector, "KEEPALIVE_SECONDS", 0.3)
    server = pbx([])
    running = listener(server.connector_settings())
    assert server.wait_for(lambda: any(a["Action"] == "Ping" for a in server.actions))
    time.sleep(0.5)
    assert running.connector.connected and server.connections == 1


def test_the_status_route_tells_whether_the_listener_is_connected(pbx, listener):
    server = pbx(scenarios.answered_incoming())
    host = host_for(AsteriskConnector, server.connector_settings())
    status = make_request(method="GET", path="/hooks/asterisk/status")
    assert host.handle(status)[1].body == {"connected": False, "last_event_at": None}
    running = listener(host.connectors["asterisk"].instance)
    assert running.wait_for(lambda: running.connector.last_event_at is not None)
    result = host.handle(status)[1]
    assert (result.status, result.body["connected"], result.events) == (200, True, [])
    assert result.body["last_event_at"].endswith("+00:00")
    running.stop()
    assert host.handle(status)[1].body["connected"] is False


def test_call_summaries_still_waiting_for_records_are_sent_when_stopping(pbx, listener):
    server = pbx(scenarios.answered_incoming())
    running = listener(server.connector_settings(cdr_settle_seconds=60))
    assert running.wait_for(lambda: server.sent == len(server.script))
    assert running.wait_for(lambda: len(running.signals) == 4)
    running.stop()
    assert kinds(running.signals)[-1] == ("finished", "101", "answered", True)
