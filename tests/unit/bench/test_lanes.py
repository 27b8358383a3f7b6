"""The call-events load generator (bench/lanes.py): what it reports is what the benchmark's
figures are made of, so it is checked against a real keep-alive HTTP server."""
import importlib.util
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from crmhub.testing import LocalHttpServer

LANES_PY = Path(__file__).resolve().parents[3] / "bench" / "lanes.py"


@pytest.fixture(scope="module")
def lanes():
    spec = importlib.util.spec_from_file_location("bench_lanes", LANES_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server():
    received, connections = [], []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            connections.append(self.client_address)

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/slow" and body == b"first try":
                time.sleep(1.0)  # answers, but after the client's timeout
            if self.path == "/drop" and body == b"first try":
                self.close_connection = True  # a server going away mid-request
                self.connection.close()
                return
            received.append((self.path, body, self.headers["Content-Type"]))
            answer = b"no" if self.path == "/busy" else b"ok"
            self.send_response(503 if self.path == "/busy" else 200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = LocalHttpServer(Handler).start()
    yield httpd.server_address, received, connections
    httpd.stop()


def test_each_lane_posts_its_requests_in_order_on_one_connection_and_reports_each(lanes, server):
    (host, port), received, connections = server
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    start = time.monotonic() + 0.1
    plan = [[(0.00, "/a", b"a1", "a1"), (0.05, "/a", b"a2", "a2"), (0.10, "/busy", b"a3", "a3")],
            [(0.02, "/b", b"b1", "b1"), (0.04, "/b", b"b2", "b2")]]
    loop = lanes.LaneLoop(host, port, start, [
        [(due, lanes.raw_post(host, port, path, body, form), tag) for due, path, body, tag in items]
        for items in plan])
    results = {tag: (due, sent, answered, status) for tag, due, sent, answered, status in loop.run()}

    assert sorted(results) == ["a1", "a2", "a3", "b1", "b2"]
    assert {tag: r[3] for tag, r in results.items()} == {
        "a1": 200, "a2": 200, "a3": 503, "b1": 200, "b2": 200}
    for tag, (due, sent, answered, _) in results.items():
        assert sent >= start + due - 0.005, f"{tag} went out before it was due"
        assert answered >= sent
    assert [body for _, body, _ in received if body.startswith(b"a")] == [b"a1", b"a2", b"a3"]
    assert all(content_type == form["Content-Type"] for _, _, content_type in received)
    assert len(connections) == 2  # one keep-alive connection per lane
    assert loop.retries == 0


def test_a_request_whose_connection_breaks_is_sent_once_more_on_a_new_one(lanes, server):
    (host, port), received, connections = server
    start = time.monotonic()
    first = lanes.raw_post(host, port, "/drop", b"first try", {})
    loop = lanes.LaneLoop(host, port, start, [[(0.0, first, "dropped"),
                                               (0.0, lanes.raw_post(host, port, "/drop", b"again",
                                                                    {}), "next")]])
    results = {tag: status for tag, _, _, _, status in loop.run()}

    # The first request broke its connection twice (sent again once), so it reports status 0;
    # the lane goes on with its next request on a fresh connection.
    assert results == {"dropped": 0, "next": 200}
    assert loop.retries == 1
    assert received == [("/drop", b"again", None)]
    assert len(connections) == 3


def test_an_answer_that_does_not_come_in_time_counts_as_a_broken_connection(lanes, server):
    (host, port), received, connections = server
    loop = lanes.LaneLoop(host, port, time.monotonic(), [[
        (0.0, lanes.raw_post(host, port, "/slow", b"first try", {}), "slow")]], timeout=0.3)
    results = {tag: status for tag, _, _, _, status in loop.run()}

    assert results == {"slow": 0}  # sent twice, not answered in time either time
    assert loop.retries == 1
    assert len(connections) == 2
