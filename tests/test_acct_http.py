"""HttpAcct: requests, the bounded queue, retries; and a real local web server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.accounting.http import HttpAcct, HttpRequest, build_request
from gatekeeper.accounting.settings import HttpAcctSettings, HttpTarget
from gatekeeper.h225.ras import dialled_digits, h323_id

ROOT = Path(__file__).resolve().parents[1]
CALL_ID = bytes(range(0xA0, 0xB0))
SPACED = "a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af"


class Response:
    def __init__(self, code: int) -> None:
        self.code = code

    def content(self) -> Deferred:
        return succeed(b"")


class FakeClient:
    """treq-like: each request waits until the test answers it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes | None, dict]] = []
        self.pending: list[Deferred] = []

    def request(self, method, url, data=None, headers=None) -> Deferred:
        self.requests.append((method, url, data, headers))
        waiting: Deferred = Deferred()
        self.pending.append(waiting)
        return waiting

    def answer(self, code: int) -> None:
        self.pending.pop(0).callback(Response(code))

    def refuse(self) -> None:
        self.pending.pop(0).errback(ConnectionRefusedError("Connection was refused"))

    @property
    def bodies(self) -> list[bytes | None]:
        return [data for _, _, data, _ in self.requests]


def cdr(number: int) -> ev.CallDetailRecord:
    return ev.CallDetailRecord(
        call_number=number, call_id=CALL_ID, conference_id=CALL_ID, setup_time=100.0,
        connect_time=110.0, disconnect_time=155.0, caller_signal_address=("10.0.0.1", 1720),
        caller_endpoint_id="1_endp", callee_signal_address=("10.0.0.2", 1721),
        callee_endpoint_id="2_endp", destination_info=(dialled_digits("800"),),
        source_info=(h323_id("alice bob"),), gatekeeper_name="gk")


def settings(**values) -> HttpAcctSettings:
    values.setdefault("targets", (("stop", HttpTarget("http://127.0.0.1:8080/cdr",
                                                      "call=%n duration=%d id=%{CallId}")),))
    return HttpAcctSettings(**values)


def delays(clock: Clock) -> list[float]:
    return [call.getTime() - clock.seconds() for call in clock.getDelayedCalls()]


# -- the request -------------------------------------------------------------------


def test_a_cdr_is_posted_as_text_with_the_body_template():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    acct.stop(cdr(7))
    assert client.requests == [(
        "POST", "http://127.0.0.1:8080/cdr", f"call=7 duration=45 id={SPACED}".encode(),
        {"Content-Type": ["text/plain; charset=utf-8"]})]


def test_a_post_without_body_sends_the_query_string_as_body():
    request = build_request(
        settings(targets=(("stop", HttpTarget("http://h/cdr?n=%n&u=%u")),)), "stop",
        {"n": "7", "u": "alice bob"}, "CDR of call 7")
    assert request == HttpRequest("POST", "http://h/cdr", "n=7&u=alice%20bob", "CDR of call 7")


def test_get_puts_percent_encoded_parameters_in_the_url():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(method="GET", targets=(
        ("stop", HttpTarget("http://h/cdr?id=%{CallId}&src=%{src-info}&n=%n")),)), client, clock)
    acct.stop(cdr(7))
    method, url, data, _ = client.requests[0]
    assert (method, data) == ("GET", None)
    assert url == ("http://h/cdr?id=" + SPACED.replace(" ", "%20")
                   + "&src=alice%20bob%3Ah323_ID&n=7")


def test_events_without_a_url_are_not_sent():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    acct.register(ev.EndpointRegistered(("10.0.0.1", 1720), None, (), "terminal", "1_endp"))
    assert client.requests == [] and acct.queued == 0


# -- the queue ---------------------------------------------------------------------


def test_one_request_at_a_time_in_order():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    for number in (1, 2, 3):
        acct.stop(cdr(number))
    assert len(client.requests) == 1 and acct.queued == 3
    client.answer(200)
    assert len(client.requests) == 1          # the next one goes on the next reactor turn
    clock.advance(0)
    client.answer(204)
    clock.advance(0)
    client.answer(200)
    assert [body.split()[0] for body in client.bodies] == [b"call=1", b"call=2", b"call=3"]
    assert (acct.sent, acct.queued, acct.retries) == (3, 0, 0)


def test_refused_connections_are_retried_with_capped_exponential_backoff():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(retry_min=1.0, retry_max=60.0), client, clock)
    acct.stop(cdr(1))
    seen = []
    for _ in range(9):
        client.refuse()
        seen.append(delays(clock)[0])
        clock.advance(seen[-1])
    assert seen == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert len(client.requests) == 10 and acct.retries == 9
    client.answer(200)
    assert (acct.sent, acct.queued) == (1, 0)
    acct.stop(cdr(2))
    client.refuse()
    assert delays(clock) == [1]                # a success resets the backoff


@pytest.mark.parametrize("code", [500, 502, 503, 408, 429])
def test_server_errors_are_retried(code):
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    acct.stop(cdr(1))
    client.answer(code)
    assert acct.queued == 1 and delays(clock) == [1]
    clock.advance(1)
    client.answer(200)
    assert client.bodies[0] == client.bodies[1]
    assert (acct.sent, acct.failed, acct.queued) == (1, 0, 0)


def test_a_client_error_is_not_retried_but_logged_with_its_body(logged):
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    acct.stop(cdr(1))
    acct.stop(cdr(2))
    client.answer(404)
    clock.advance(0)
    client.answer(200)
    assert [body.split()[0] for body in client.bodies] == [b"call=1", b"call=2"]
    assert (acct.sent, acct.failed, acct.retries) == (1, 1, 0)
    assert any(e.get("code") == 404 and e.get("body", "").startswith("call=1") for e in logged)


def test_a_request_without_answer_times_out_and_is_retried():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(timeout=5.0), client, clock)
    acct.stop(cdr(1))
    clock.advance(4.9)
    assert acct.retries == 0
    clock.advance(0.1)
    assert acct.retries == 1
    assert client.pending[0].called            # the hanging request was cancelled
    client.pending.pop(0)
    clock.advance(1)
    assert len(client.requests) == 2


def test_nothing_is_dropped_while_the_queue_has_room_and_a_full_queue_says_so(logged):
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(queue_size=3), client, clock)
    for number in (1, 2, 3, 4):
        acct.stop(cdr(number))
    assert (acct.queued, acct.dropped) == (3, 1)
    drops = [e for e in logged if "DROPPED" in e.get("log_format", "")]
    assert len(drops) == 1
    assert drops[0]["label"] == "CDR of call 4" and drops[0]["body"].startswith("call=4 ")
    client.refuse()
    clock.advance(1)
    for _ in range(3):
        client.answer(200)
        clock.advance(0)
    assert [body.split()[0] for body in client.bodies] == [b"call=1", b"call=1", b"call=2",
                                                           b"call=3"]
    assert (acct.sent, acct.queued, acct.dropped) == (3, 0, 1)


def test_submit_does_not_wait_for_the_server():
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    started = time.monotonic()
    for number in range(1000):
        acct.stop(cdr(number))
    assert time.monotonic() - started < 1.0
    assert acct.queued == 1000 and len(client.requests) == 1


def test_close_cancels_the_retry_and_logs_what_was_not_delivered(logged):
    client, clock = FakeClient(), Clock()
    acct = HttpAcct(settings(), client, clock)
    acct.stop(cdr(1))
    client.refuse()
    assert clock.getDelayedCalls()
    acct.close()
    assert clock.getDelayedCalls() == []
    assert any("stopped before delivering" in e.get("log_format", "")
               and e.get("label") == "CDR of call 1" for e in logged)


def test_a_client_that_raises_is_retried_like_a_refusal():
    class Raising:
        calls = 0

        def request(self, method, url, data=None, headers=None):
            Raising.calls += 1
            if Raising.calls == 1:
                raise OSError("no route")
            return succeed(Response(200))

    clock = Clock()
    acct = HttpAcct(settings(), Raising(), clock)
    acct.stop(cdr(1))
    assert acct.retries == 1
    clock.advance(1)
    assert (acct.sent, acct.queued) == (1, 0)


def test_failing_immediately_does_not_recurse():
    clock = Clock()

    class Refusing:
        def request(self, method, url, data=None, headers=None):
            return fail(ConnectionRefusedError())

    acct = HttpAcct(settings(), Refusing(), clock)
    acct.stop(cdr(1))
    assert acct.retries == 1 and len(clock.getDelayedCalls()) == 1


# -- a real web server on 127.0.0.1 --------------------------------------------------

SCENARIO = r"""
import json, sys
from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.protocols.policies import WrappingFactory
from twisted.web import resource, server

from gatekeeper import events as ev
from gatekeeper.accounting import Accounting
from gatekeeper.accounting.settings import (AcctSettings, HttpAcctSettings, HttpTarget, ModuleEntry)


class Collector(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.received = []
        self.busy_answers = 0

    def render_POST(self, request):
        if self.busy_answers:
            self.busy_answers -= 1
            request.setResponseCode(503)
            return b"busy"
        self.received.append(request.content.read().decode())
        return b"ok"


def cdr(number):
    return ev.CallDetailRecord(
        call_number=number, call_id=bytes(16), conference_id=bytes(16), setup_time=0.0,
        connect_time=1.0, disconnect_time=2.0, caller_signal_address=("127.0.0.1", 1720),
        caller_endpoint_id="1_endp", callee_signal_address=None, callee_endpoint_id="",
        destination_info=(), source_info=(), gatekeeper_name="gk")


@inlineCallbacks
def until(condition, limit=8.0):
    waited = 0.0
    while not condition():
        if waited > limit:
            raise RuntimeError("timed out waiting")
        yield task.deferLater(reactor, 0.02, lambda: None)
        waited += 0.02


@inlineCallbacks
def scenario():
    collector = Collector()
    site = WrappingFactory(server.Site(collector))   # knows its open connections
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    number = port.getHost().port
    settings = AcctSettings(
        modules=(ModuleEntry("HttpAcct", "required", frozenset({"stop"})),),
        http=HttpAcctSettings(
            targets=(("stop", HttpTarget(f"http://127.0.0.1:{number}/cdr", "CDR %n")),),
            retry_min=0.05, retry_max=0.2, timeout=2.0))
    acct = Accounting(settings, reactor, lambda text: None)   # the default treq client
    report = {}

    for n in (1, 2):                                  # the server is up
        acct(cdr(n))
    yield until(lambda: len(collector.received) == 2)

    yield port.stopListening()                        # the server goes down: refused
    for connection in list(site.protocols):
        connection.transport.abortConnection()
    yield task.deferLater(reactor, 0.1, lambda: None)
    for n in (3, 4, 5):
        acct(cdr(n))
    yield until(lambda: acct.http.retries >= 3)
    report["retries_while_down"] = acct.http.retries
    report["received_while_down"] = len(collector.received)

    collector.busy_answers = 2                        # back, but answering 503 twice
    port = reactor.listenTCP(number, site, interface="127.0.0.1")
    yield until(lambda: len(collector.received) == 5)
    yield task.deferLater(reactor, 0.3, lambda: None) # would a duplicate arrive?

    report["received"] = collector.received
    report["counters"] = acct.counters()
    acct.close()
    yield port.stopListening()
    print(json.dumps(report))


def main():
    failures = []
    done = scenario()
    done.addErrback(lambda failure: (failure.printTraceback(file=sys.stderr),
                                     failures.append(failure)))
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
    sys.exit(1 if failures else 0)


main()
"""


def test_every_cdr_arrives_once_after_the_server_refused_connections():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    finished = subprocess.run([sys.executable, "-c", SCENARIO], env=env, capture_output=True,
                              text=True, timeout=30, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["received_while_down"] == 2
    assert report["retries_while_down"] >= 3
    assert report["received"] == [f"CDR {n}" for n in (1, 2, 3, 4, 5)]
    counters = report["counters"]
    assert (counters["http_sent"], counters["queued"], counters["dropped"],
            counters["failed"]) == (5, 0, 0, 0)
    assert counters["http_retries"] >= report["retries_while_down"] + 2   # the two 503s
