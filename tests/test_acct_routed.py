"""Accounting of a gatekeeper-routed call end to end (issue 11): the relay of
test_signalling_relay.py (real RasController, SetupAdmission, SignallingServer
on a MemoryReactorClock) with an Accounting observer on its bus, the updates
timed by the same clock: CALL|Start, Alert, Connect, Update..., Stop."""

from __future__ import annotations

import pytest

from gatekeeper import events as ev
from gatekeeper.accounting import Accounting
from gatekeeper.accounting.settings import parse_acct
from gatekeeper.configfile import read_ini
from gatekeeper.h225 import q931
from test_signalling_relay import (START, Gatekeeper, common, connect_message, relayed_kinds,
                                   signal)

TEMPLATES = "|".join(("%n", "%{caller-ip}:%{caller-port}", "%{callee-ip}:%{callee-port}",
                      "%{caller-epid}", "%{callee-epid}", "%{CallId}", "%d", "%t",
                      "%{connect-time}", "%{alerting-time}", "%g"))


class Http:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method, url, data=None, headers=None):
        from twisted.internet.defer import succeed

        self.urls.append(url)

        class Answer:
            code = 204

            def content(self):
                return succeed(b"")

        return succeed(Answer())


@pytest.fixture
def routed():
    gk = Gatekeeper()
    text = ("[Gatekeeper::Acct]\nStatusAcct=required\nHttpAcct=optional;connect,update\n"
            "[CallTable]\nAcctUpdateInterval=20\n"
            "[StatusAcct]\nTimestampFormat=%s\n"
            + "".join(f"{e}Event={e}|{TEMPLATES}\n"
                      for e in ("Start", "Alert", "Connect", "Update", "Stop"))
            + "[HttpAcct]\nMethod=GET\nConnectURL=http://127.0.0.1:9/c?d=%d&id=%{CallId}\n"
            "UpdateURL=http://127.0.0.1:9/u?d=%d\n")
    settings, warnings = parse_acct(read_ini(text, "gk.ini"))
    assert warnings == []
    lines: list[str] = []
    http = Http()
    acct = Accounting(settings, gk.reactor, lines.append, http, "GK",
                      connected_calls=gk.calls.connected_snapshots, publish=gk.bus.publish)
    gk.bus.subscribe(acct)
    yield gk, acct, lines, http
    acct.close()


def fields(line: str) -> list[str]:
    return line.split("|")


def test_a_relayed_call_is_accounted_at_start_alert_connect_updates_and_stop(routed):
    gk, acct, lines, http = routed
    call = gk.start_call()
    number, caller, callee = call.call.number, gk.phones[1], gk.phones[2]
    dashed = "-".join(f"{b:02x}" for b in call.call_id)
    assert [fields(line)[0] for line in lines] == ["Start"]
    gk.reactor.advance(2)
    kind, body, content, ies = relayed_kinds(call.call_id)[1]          # Alerting
    call.callee.send(signal(kind, call.callee_crv, True, body, content, ies))
    gk.reactor.advance(3)
    call.callee.send(connect_message(call.call_id, call.callee_crv))
    assert call.caller.received()[-1].message_type == q931.CONNECT
    alert, connect = lines[1], lines[2]
    parties = ["10.0.0.1:1720", "10.0.0.2:1720", caller.endpoint_id, callee.endpoint_id, dashed]
    assert fields(alert) == ["Alert", str(number), *parties, "0", "2", "", str(START + 2), "GK"]
    # the Connect's %{alerting-time} is the first Alerting's, kept with the call
    assert fields(connect) == ["Connect", str(number), *parties, "0", "5", str(START + 5),
                               str(START + 2), "GK"]
    # Updates every 20 s, the first 20 s after the ACF, from the reactor's clock.
    for _ in range(45):
        gk.reactor.advance(1)
    updates = [fields(line) for line in lines if line.startswith("Update|")]
    assert [u[7] for u in updates] == ["15", "35"]           # %d: connected at +5
    assert all(u[1:7] == [str(number), *parties] and u[9] == str(START + 5) for u in updates)
    assert [u[8] for u in updates] == ["20", "40"]            # %t: since the ACF
    spaced = dashed.replace("-", "%20")        # HttpAcct: the CDR form, percent-encoded
    assert http.urls[0] == f"http://127.0.0.1:9/c?d=0&id={spaced}"
    assert http.urls[1:] == ["http://127.0.0.1:9/u?d=15", "http://127.0.0.1:9/u?d=35"]
    # The caller hangs up: one Stop, and no more updates.
    call.caller.send(signal(q931.RELEASE_COMPLETE, 0x2A5B, False, "releaseComplete",
                            {**common(call.call_id), "reason": ("undefinedReason", None)}))
    assert len(gk.of(ev.CallDetailRecord)) == 1
    stop = [fields(line) for line in lines if line.startswith("Stop|")]
    assert len(stop) == 1 and stop[0][7] == "45"
    before = len(lines)
    for _ in range(60):
        gk.reactor.advance(1)
    assert len(lines) == before
    assert gk.calls.connected_snapshots() == []
