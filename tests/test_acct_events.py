"""Accounting of call progress (issue 11): the alert, connect, update, on and
off events, [CallTable] AcctUpdateInterval, the [Gatekeeper::Acct] event lists
and control flags, and the call snapshots the events carry."""

from __future__ import annotations

import calendar
import dataclasses
import time

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from gatekeeper import config, events as ev, tap
from gatekeeper.accounting import SHUTDOWN_DRAIN, Accounting
from gatekeeper.accounting.outcome import FAIL, NEXT, OK, verdict
from gatekeeper.accounting.settings import parse_acct
from gatekeeper.accounting.updates import UpdateTimer
from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.core.calls import Call, CallTable
from gatekeeper.h225.ras import dialled_digits, h323_id

CALL_ID = bytes(range(0xA0, 0xB0))
CONF_ID = bytes(range(0x10, 0x20))
DASHED = "a0-a1-a2-a3-a4-a5-a6-a7-a8-a9-aa-ab-ac-ad-ae-af"


def at(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


SETUP = at("2026-11-26 14:15:40")


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    clock = Clock()
    clock.advance(SETUP)
    yield clock
    monkeypatch.undo()
    time.tzset()


def new_call(table: CallTable, number: int | None = None, call_id: bytes = CALL_ID,
             setup: float = SETUP) -> Call:
    call = Call(number=number or table.next_number(), call_id=call_id, conference_id=CONF_ID,
                caller_endpoint_id="1_endp", caller_signal_address=("10.0.0.1", 1720),
                caller_crv=12, callee_endpoint_id="2_endp",
                callee_signal_address=("10.0.0.2", 1721),
                destination_info=(dialled_digits("800"),), source_info=(h323_id("alice"),),
                bandwidth=640, admission_time=setup, routed=True)
    return table.add(call)


class Http:
    """treq-like client that answers 200 at once and keeps what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes | None]] = []

    def request(self, method, url, data=None, headers=None):
        self.requests.append((method, url, data))

        class Answer:
            code = 200

            def content(self):
                return succeed(b"")

        return succeed(Answer())

    @property
    def urls(self) -> list[str]:
        return [url for _, url, _ in self.requests]


HTTP_URLS = "\n".join(f"{event}URL=http://127.0.0.1:9/{event}?n=%n&d=%d&g=%g"
                      for event in ("Start", "Alert", "Connect", "Update", "Stop", "On", "Off"))


def accounting(clock, text: str, table: CallTable | None = None, http=None,
               bus: ev.EventBus | None = None) -> tuple[Accounting, list[str]]:
    settings, _ = parse_acct(read_ini(text, "gk.ini"))
    lines: list[str] = []
    acct = Accounting(settings, clock, lines.append, http, "gk",
                      connected_calls=table.connected_snapshots if table is not None else None,
                      publish=bus.publish if bus is not None else None)
    if bus is not None:
        bus.subscribe(acct)
    return acct, lines


# -- the events carry frozen snapshots -------------------------------------------------


def test_alerting_and_connected_events_carry_a_frozen_snapshot_of_the_call():
    table = CallTable()
    call = new_call(table)
    alerting = table.alerting_event(call, now=SETUP + 2)
    table.mark_connected(call, SETUP + 3)
    connected = table.connected_event(call)
    snapshot = connected.call
    assert {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot)} == {
        "call_number": call.number, "call_id": CALL_ID, "conference_id": CONF_ID,
        "setup_time": SETUP, "connect_time": SETUP + 3,
        "caller_signal_address": ("10.0.0.1", 1720), "caller_endpoint_id": "1_endp",
        "callee_signal_address": ("10.0.0.2", 1721), "callee_endpoint_id": "2_endp",
        "destination_info": (dialled_digits("800"),), "source_info": (h323_id("alice"),),
        "bandwidth": 640, "routed": True, "alerting_time": SETUP + 2}
    assert alerting.call.connect_time is None and alerting.call.alerting_time == SETUP + 2
    # The snapshots do not follow the live record.
    call.callee_signal_address = ("10.0.0.9", 1720)
    call.bandwidth = 1
    assert snapshot.callee_signal_address == ("10.0.0.2", 1721) and snapshot.bandwidth == 640
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.bandwidth = 3          # type: ignore[misc]
    # A later Alerting keeps the first time.
    assert table.alerting_event(call, now=SETUP + 9).call.alerting_time == SETUP + 2


def test_events_are_equal_when_they_name_the_same_call_whatever_the_snapshot():
    table = CallTable()
    call = new_call(table)
    assert table.alerting_event(call) == ev.CallAlerting(call.number, CALL_ID)
    table.mark_connected(call, SETUP + 3)
    assert table.connected_event(call) == ev.CallConnected(call.number, CALL_ID, SETUP + 3)
    assert table.connected_event(call) != ev.CallConnected(call.number, CALL_ID, SETUP + 4)


def test_connected_snapshots_lists_only_connected_calls_and_honours_the_filter():
    table = CallTable()
    first = new_call(table)
    second = new_call(table, call_id=bytes(16))
    new_call(table, call_id=bytes([1]) * 16)            # never connected
    table.mark_connected(second, SETUP + 5)
    table.mark_connected(first, SETUP + 1)
    assert [s.call_number for s in table.connected_snapshots()] == [first.number, second.number]
    asked = []
    picked = table.connected_snapshots(
        lambda number, setup, connect: asked.append((number, setup, connect))
        or number == second.number)
    assert [s.call_number for s in picked] == [second.number]
    assert sorted(asked) == [(first.number, SETUP, SETUP + 1), (second.number, SETUP, SETUP + 5)]
    assert len(table) == 3            # reading changed nothing
    assert table.total_connected == 2


# -- StatusAcct lines ------------------------------------------------------------------


def test_statusacct_alert_connect_update_lines_have_gnugks_default_form(clock):
    table = CallTable()
    call = new_call(table)
    acct, lines = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=required")
    clock.advance(2)
    acct(table.alerting_event(call))
    clock.advance(1)
    table.mark_connected(call, clock.seconds())
    acct(table.connected_event(call))
    acct(ev.CallUpdate(table.snapshot(call), clock.seconds() + 30))
    addresses = f"10.0.0.1:1720|10.0.0.2:1721|{DASHED}"
    assert lines == [f"CALL|Alert|{addresses}", f"CALL|Connect|{addresses}",
                     f"CALL|Update|{addresses}"]


def test_progress_events_get_the_call_parameters_of_stop(clock):
    template = ("%g|%n|%{caller-epid}|%{callee-epid}|%{src-info}|%{dest-info}|%{ConfId}|"
                "%{setup-time}|%{alerting-time}|%{connect-time}|%d|%t|%{ring-time}|"
                "%{Calling-Station-Id}|%{Called-Station-Id}|%{bandwidth}")
    text = ("[Gatekeeper::Acct]\nStatusAcct=required\n[StatusAcct]\nTimestampFormat=MySQL\n"
            f"AlertEvent=A|{template}\nConnectEvent=C|{template}\nUpdateEvent=U|{template}\n")
    table = CallTable()
    call = new_call(table)
    acct, lines = accounting(clock, text)
    clock.advance(2)                                   # 14:15:42: rings
    acct(table.alerting_event(call))                   # no time given: the accounting's clock
    clock.advance(5)                                   # 14:15:47: answered
    table.mark_connected(call, clock.seconds())
    acct(table.connected_event(call))
    snapshot = dataclasses.replace(table.snapshot(call), alerting_time=SETUP + 2)
    acct(ev.CallUpdate(snapshot, clock.seconds() + 61.5))
    conf = " ".join(f"{b:02x}" for b in CONF_ID)
    common = f"gk|{call.number}|1_endp|2_endp|alice:h323_ID|800:dialedDigits|{conf}|"
    assert lines == [
        f"A|{common}2026-11-26 14:15:40|2026-11-26 14:15:42||0|2|0|10.0.0.1:1720|800|640",
        f"C|{common}2026-11-26 14:15:40||2026-11-26 14:15:47|0|7||10.0.0.1:1720|800|640",
        f"U|{common}2026-11-26 14:15:40|2026-11-26 14:15:42|2026-11-26 14:15:47|61|68|5|"
        "10.0.0.1:1720|800|640",
    ]


def test_fileacct_logs_only_stop_as_gnugks(clock, tmp_path):
    table = CallTable()
    call = new_call(table)
    detail = tmp_path / "cdr.log"
    acct, _ = accounting(clock, f"[Gatekeeper::Acct]\nFileAcct=required\n"
                                f"[FileAcct]\nDetailFile={detail}\n")
    acct(table.alerting_event(call))
    table.mark_connected(call, SETUP + 1)
    acct(table.connected_event(call))
    acct(ev.CallUpdate(table.snapshot(call), SETUP + 40))
    assert detail.read_text() == ""
    acct(table.end(call, SETUP + 50, "gk"))
    assert detail.read_text().startswith(f"CDR|{call.number}|a0 a1")
    warnings = parse_acct(read_ini("[Gatekeeper::Acct]\nFileAcct=required;stop,connect\n",
                                   "gk.ini"))[1]
    assert any("FileAcct does not log 'connect'" in w for w in warnings)


# -- HttpAcct ----------------------------------------------------------------------------


def test_httpacct_sends_alert_connect_update_with_their_own_urls(clock):
    http = Http()
    table = CallTable()
    call = new_call(table)
    acct, _ = accounting(clock, f"[Gatekeeper::Acct]\nHttpAcct=required\n"
                                f"[HttpAcct]\nMethod=GET\n{HTTP_URLS}\n", http=http)
    acct(table.alerting_event(call))
    table.mark_connected(call, SETUP + 4)
    acct(table.connected_event(call))
    acct(ev.CallUpdate(table.snapshot(call), SETUP + 34))
    n = call.number
    assert http.urls == [f"http://127.0.0.1:9/Alert?n={n}&d=0&g=gk",
                         f"http://127.0.0.1:9/Connect?n={n}&d=0&g=gk",
                         f"http://127.0.0.1:9/Update?n={n}&d=30&g=gk"]


def test_httpacct_on_and_off(clock):
    http = Http()
    acct, _ = accounting(clock, "[Gatekeeper::Acct]\nHttpAcct=required;on,off\n"
                                "[HttpAcct]\nOnBody=%g up at %{timestamp}\nOffURL=http://h/off\n"
                                "OnURL=http://h/on\nTimestampFormat=MySQL\n", http=http)
    acct.on()
    closed = acct.shutdown()
    assert closed.called
    assert http.requests == [("POST", "http://h/on", b"gk up at 2026-11-26 14:15:40"),
                             ("POST", "http://h/off", b"")]


# -- [Gatekeeper::Acct] event lists ------------------------------------------------------


def test_a_module_gets_only_the_events_of_its_list(clock):
    http = Http()
    table = CallTable()
    call = new_call(table)
    acct, lines = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=optional;connect\n"
                                    f"HttpAcct=optional;alert,off\n[HttpAcct]\n{HTTP_URLS}\n",
                             http=http)
    acct.on()
    acct(table.alerting_event(call))
    table.mark_connected(call, SETUP + 1)
    acct(table.connected_event(call))
    acct(ev.CallUpdate(table.snapshot(call), SETUP + 31))
    acct(table.end(call, SETUP + 40, "gk"))
    acct.shutdown()
    assert [line.split("|")[1] for line in lines] == ["Connect"]
    assert [url.split("/")[3].split("?")[0] for url in http.urls] == ["Alert", "Off"]


def test_without_a_list_a_module_gets_every_event_it_supports(clock):
    http = Http()
    table = CallTable()
    call = new_call(table)
    acct, lines = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=optional\n"
                                    f"HttpAcct=optional\n[HttpAcct]\n{HTTP_URLS}\n", http=http)
    acct.on()
    acct(table.alerting_event(call))
    table.mark_connected(call, SETUP + 1)
    acct(table.connected_event(call))
    acct(ev.CallUpdate(table.snapshot(call), SETUP + 31))
    acct(table.end(call, SETUP + 40, "gk"))
    acct.shutdown()
    assert [line.split("|")[1] for line in lines] == ["Alert", "Connect", "Update", "Stop"]
    assert [url.split("/")[3].split("?")[0] for url in http.urls] == [
        "On", "Alert", "Connect", "Update", "Stop", "Off"]


# -- control flags ---------------------------------------------------------------------------


@pytest.mark.parametrize("results, logged", [
    ([], True),
    ([("required", OK)], True),
    ([("required", FAIL)], False),
    ([("required", NEXT)], False),
    ([("optional", FAIL), ("required", OK)], True),
    ([("required", OK), ("optional", FAIL)], False),        # the last module decides
    ([("required", FAIL), ("optional", OK)], False),
    ([("alternative", FAIL), ("sufficient", OK)], True),
    ([("sufficient", FAIL), ("optional", OK)], False),
    ([("alternative", OK), ("required", FAIL)], True),      # GnuGk stops at alternative OK
    ([("sufficient", OK), ("required", FAIL)], True),
    ([("alternative", FAIL), ("sufficient", NEXT)], False),
])
def test_the_verdict_follows_gnugks_control_flags(results, logged):
    assert verdict(results) is logged


def test_a_failed_verdict_is_counted_and_logged_but_every_module_still_runs(clock, tmp_path,
                                                                              logged):
    table = CallTable()
    call = new_call(table)
    acct, lines = accounting(clock, "[Gatekeeper::Acct]\nFileAcct=sufficient;stop\n"
                                    "StatusAcct=required;stop\n"
                                    f"[FileAcct]\nDetailFile={tmp_path}/no/such/dir/cdr.log\n")
    acct(table.end(call, SETUP + 10, "gk"))
    assert lines and lines[0].startswith("CALL|Stop|")   # not skipped after the failure
    assert acct.unlogged == 1 and acct.counters()["unlogged_events"] == 1
    texts = [e.get("log_format", "") for e in logged]
    assert any("does not count as logged" in t for t in texts)
    # GnuGk would stop at a sufficient module that succeeded; here the next one still runs.
    ok_file = tmp_path / "cdr.log"
    acct2, lines2 = accounting(clock, "[Gatekeeper::Acct]\nFileAcct=sufficient;stop\n"
                                      f"StatusAcct=required;stop\n[FileAcct]\nDetailFile={ok_file}\n")
    acct2(table.end(new_call(table, call_id=bytes(16)), SETUP + 10, "gk"))
    assert ok_file.read_text().startswith("CDR|") and len(lines2) == 1
    assert acct2.unlogged == 0


# -- [CallTable] AcctUpdateInterval --------------------------------------------------------


def test_acct_update_interval_is_read_from_the_call_table_section():
    assert parse_acct(read_ini("", "gk.ini"))[0].update_interval == 0
    settings, warnings = parse_acct(read_ini("[CallTable]\nAcctUpdateInterval=60\n", "gk.ini"))
    assert (settings.update_interval, warnings) == (60, [])
    settings, warnings = parse_acct(read_ini("[CallTable]\nAcctUpdateInterval=5\n"
                                             "GenerateUCCDR=1\n", "gk.ini"))
    assert settings.update_interval == 10
    assert any("raised to 10" in w for w in warnings)
    assert any("[CallTable] GenerateUCCDR: not supported" in w for w in warnings)
    with pytest.raises(ConfigError, match=r"\[CallTable\] AcctUpdateInterval=soon"):
        parse_acct(read_ini("[CallTable]\nAcctUpdateInterval=soon\n", "gk.ini"))
    with pytest.raises(ConfigError, match="AcctUpdateInterval=-1"):
        parse_acct(read_ini("[CallTable]\nAcctUpdateInterval=-1\n", "gk.ini"))
    whole = config.parse(read_ini("[CallTable]\nAcctUpdateInterval=30\n", "gk.ini"))
    assert whole.acct.update_interval == 30
    assert not any("section not supported" in w for w in whole.warnings)


def test_updates_come_every_interval_the_first_counted_from_setup_as_gnugks(clock):
    bus = ev.EventBus()
    seen: list[object] = []
    bus.subscribe(seen.append)
    table = CallTable()
    acct, lines = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=required;update\n"
                                    "[CallTable]\nAcctUpdateInterval=30\n"
                                    "[StatusAcct]\nUpdateEvent=U|%n|%d\n", table=table, bus=bus)
    early = new_call(table)                                  # set up at +0
    table.mark_connected(early, SETUP + 0.5)                 # answered at once
    late = new_call(table, call_id=bytes(16), setup=SETUP + 10)
    for second in range(1, 101):
        clock.advance(1)
        if second == 50:
            table.mark_connected(late, SETUP + 50.5)         # rang for 40 s
    # early: 30 s after setup, then every 30 s; late: at once (already 41 s
    # since its setup), then 30 s after that.
    e, n = early.number, late.number
    assert lines == [f"U|{e}|29", f"U|{n}|0", f"U|{e}|59", f"U|{n}|30", f"U|{e}|89"]
    updates = [u for u in seen if isinstance(u, ev.CallUpdate)]
    assert [u.time - SETUP for u in updates] == [30, 51, 60, 81, 90]
    bus.publish(table.end(early, clock.seconds(), "gk"))
    for _ in range(30):
        clock.advance(1)
    assert lines[5:] == [f"U|{n}|60"]
    assert acct.counters()["updates_published"] == 6
    acct.close()
    assert clock.getDelayedCalls() == []


def test_no_timer_without_an_interval_or_without_a_module_for_update(clock):
    table, bus = CallTable(), ev.EventBus()
    acct, _ = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=required\n", table=table,
                         bus=bus)
    assert acct.updates is None and clock.getDelayedCalls() == []
    acct, _ = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=required;stop\n"
                                "[CallTable]\nAcctUpdateInterval=30\n", table=table, bus=bus)
    assert acct.updates is None and clock.getDelayedCalls() == []
    acct, _ = accounting(clock, "[Gatekeeper::Acct]\nStatusAcct=required\n"
                                "[CallTable]\nAcctUpdateInterval=30\n", table=table, bus=bus)
    assert acct.updates is not None and acct.updates.running
    acct.shutdown()
    assert not acct.updates.running and clock.getDelayedCalls() == []


def test_a_long_stall_gives_one_update_and_the_next_comes_an_interval_later(clock):
    table = CallTable()
    published: list[ev.CallUpdate] = []
    call = new_call(table)
    table.mark_connected(call, clock.seconds())
    timer = UpdateTimer(clock, 30, table.connected_snapshots, published.append)
    clock.advance(95)                                      # the reactor was busy
    assert [u.duration for u in published] == [95]
    clock.advance(25)                                      # +120: 25 s since the last one
    assert [u.duration for u in published] == [95]
    clock.advance(5)
    assert [u.duration for u in published] == [95, 125]
    timer.stop()
    with pytest.raises(ValueError):
        UpdateTimer(clock, 0, table.connected_snapshots, published.append)


# -- the service's wiring ---------------------------------------------------------------------


def service_with(text: str, http, clock: Clock) -> tap.GatekeeperService:
    class Service(tap.GatekeeperService):
        http_client = http

    parsed = config.parse(read_ini(text, "gk.ini"))
    return Service(tap.RasSettings(), tap.ListenSettings(status_port=0, discovery_port=0),
                   clock, parsed)


def test_the_service_sends_on_at_start_and_off_at_stop_then_closes(clock, monkeypatch):
    http = Http()
    service = service_with("[Gatekeeper::Acct]\nHttpAcct=optional;on,off\n"
                           "[HttpAcct]\nOnURL=http://h/on\nOffURL=http://h/off\n", http, clock)
    monkeypatch.setattr(service, "_start_children", lambda: None)   # no sockets
    service.startService()
    assert http.urls == ["http://h/on"]
    stopped = service.stopService()
    assert http.urls == ["http://h/on", "http://h/off"]
    assert stopped.called


def test_stop_waits_for_httpacct_a_bounded_time(clock, logged):
    class Silent:
        """Never answers: the off event stays queued."""

        def __init__(self):
            self.urls = []

        def request(self, method, url, data=None, headers=None):
            self.urls.append(url)
            return Deferred()

    http = Silent()
    service = service_with("[Gatekeeper::Acct]\nHttpAcct=optional;off\n"
                           "[HttpAcct]\nOffURL=http://h/off\nTimeout=60000\n", http, clock)
    stopped = service.stopService()
    assert http.urls == ["http://h/off"] and not stopped.called
    clock.advance(SHUTDOWN_DRAIN - 0.1)
    assert not stopped.called
    clock.advance(0.1)
    assert stopped.called
    assert any("stopped before delivering" in e.get("log_format", "") for e in logged)


def test_the_service_gives_accounting_the_call_table_for_updates(clock):
    lines: list[str] = []
    service = service_with("[Gatekeeper::Acct]\nStatusAcct=required;update\n"
                           "[CallTable]\nAcctUpdateInterval=10\n", None, clock)
    service.bus.subscribe(lambda e: lines.append(e.text) if isinstance(e, ev.AccountingLine)
                          else None)
    call = new_call(service.calls)
    service.calls.mark_connected(call, clock.seconds())
    for _ in range(21):
        clock.advance(1)
    assert len(lines) == 2 and all(line.startswith("CALL|Update|10.0.0.1:1720|") for line in lines)
    # A reload that changes the interval restarts the timer with it.
    reloaded = config.parse(read_ini("[Gatekeeper::Acct]\nStatusAcct=required;update\n"
                                     "[CallTable]\nAcctUpdateInterval=0\n", "gk.ini"))
    service.apply(reloaded, service.settings)
    assert service.accounting.updates is None
    for _ in range(30):
        clock.advance(1)
    assert len(lines) == 2
