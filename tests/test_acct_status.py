"""StatusAcct lines, and the Accounting observer that dispatches events."""

from __future__ import annotations

import calendar
import time

import pytest
from twisted.internet.defer import fail
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.accounting import STATUS_TRACE_LEVEL, Accounting
from gatekeeper.accounting.settings import (AcctSettings, FileAcctSettings, HttpAcctSettings,
                                      HttpTarget, ModuleEntry, StatusAcctSettings, parse_acct)
from gatekeeper.accounting.status import StatusAcct
from gatekeeper.configfile import read_ini
from gatekeeper.events import EventBus
from gatekeeper.h225.ras import dialled_digits, h323_id

CALL_ID = bytes(range(0xA0, 0xB0))
DASHED = "a0-a1-a2-a3-a4-a5-a6-a7-a8-a9-aa-ab-ac-ad-ae-af"


def at(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    clock = Clock()
    clock.advance(at("2026-11-26 14:15:40"))
    yield clock
    monkeypatch.undo()
    time.tzset()


def cdr(number: int = 7) -> ev.CallDetailRecord:
    return ev.CallDetailRecord(
        call_number=number, call_id=CALL_ID, conference_id=CALL_ID,
        setup_time=at("2026-11-26 14:15:40"), connect_time=at("2026-11-26 14:15:43"),
        disconnect_time=at("2026-11-26 14:16:28"),
        caller_signal_address=("10.0.0.1", 1720), caller_endpoint_id="1_endp",
        callee_signal_address=("10.0.0.2", 1721), callee_endpoint_id="2_endp",
        destination_info=(dialled_digits("800"),), source_info=(h323_id("alice"),),
        gatekeeper_name="gk")


def admitted(answer_call: bool = False) -> ev.AdmissionConfirmed:
    return ev.AdmissionConfirmed(
        caller_signal_address=("10.0.0.1", 1720), endpoint_id="1_endp", call_reference=12,
        destination=(dialled_digits("800"),), source=(h323_id("alice"),),
        answer_call=answer_call, call_id=CALL_ID, routed=False, call_number=7,
        dest_signal_address=("10.0.0.2", 1721), bandwidth=640)


def registered(keepalive: bool = False, new: bool = True) -> ev.EndpointRegistered:
    return ev.EndpointRegistered(("10.0.0.1", 1720), ("10.0.0.1", 1719),
                                 (dialled_digits("700"), h323_id("alice")), "terminal",
                                 "1_endp", keepalive=keepalive, new=new)


def unregistered() -> ev.EndpointUnregistered:
    return ev.EndpointUnregistered(("10.0.0.1", 1719), "1_endp",
                                   (dialled_digits("700"), h323_id("alice")),
                                   signal_address=("10.0.0.1", 1720))


def status_acct(clock, **templates) -> tuple[StatusAcct, list[str]]:
    lines: list[str] = []
    settings = StatusAcctSettings()
    if templates:
        merged = dict(settings.templates) | templates
        settings = StatusAcctSettings(tuple(merged.items()))
    return StatusAcct(settings, lines.append, clock, "gk"), lines


# -- StatusAcct -----------------------------------------------------------------


def test_default_lines_are_gnugks(clock):
    acct, lines = status_acct(clock)
    acct.start(admitted())
    acct.stop(cdr())
    acct.register(registered())
    acct.unregister(unregistered())
    assert lines == [
        f"CALL|Start|10.0.0.1:1720|10.0.0.2:1721|{DASHED}",
        f"CALL|Stop|10.0.0.1:1720|10.0.0.2:1721|{DASHED}",
        "EP|Register|10.0.0.1:1720|700,alice",
        "EP|Unregister|10.0.0.1:1720|700,alice",
    ]
    assert acct.sent == 4


def test_configured_templates(clock):
    acct, lines = status_acct(
        clock, stop="STOP|%n|%d|%{Calling-Station-Id}>%{Called-Station-Id}|%g|%{setup-time}",
        register="REG|%{epid}|%u|%g")
    acct.stop(cdr())
    acct.register(registered())
    assert lines == ["STOP|7|45|10.0.0.1:1720>800|gk|14:15:40.000 UTC Thu Nov 26 2026",
                     "REG|1_endp|alice|gk"]


def test_an_empty_template_sends_nothing(clock):
    acct, lines = status_acct(clock, start="")
    acct.start(admitted())
    assert lines == [] and acct.sent == 0


def test_gnugk_sends_statusacct_lines_at_the_cdr_trace_level():
    assert STATUS_TRACE_LEVEL == 1


# -- Accounting: which events reach which module ----------------------------------


def accounting(clock, tmp_path, text: str, http_client=None) -> tuple[Accounting, list[str]]:
    settings, _ = parse_acct(read_ini(text + f"\n[FileAcct]\nDetailFile={tmp_path}/cdr.log\n",
                                      "gk.ini"))
    lines: list[str] = []
    return Accounting(settings, clock, lines.append, http_client, "gk"), lines


def test_the_observer_on_the_bus_runs_status_and_file(clock, tmp_path):
    acct, lines = accounting(clock, tmp_path,
                             "[Gatekeeper::Acct]\nFileAcct=required;stop\nStatusAcct=optional")
    bus = EventBus()
    bus.subscribe(acct)
    bus.publish(registered())
    bus.publish(admitted())
    bus.publish(ev.Notice("not accounting"))
    bus.publish(cdr())
    assert [line.split("|")[:2] for line in lines] == [["EP", "Register"], ["CALL", "Start"],
                                                        ["CALL", "Stop"]]
    assert (tmp_path / "cdr.log").read_text().startswith("CDR|7|")
    assert (acct.written, acct.failed) == (1, 0)
    assert bus.failures == 0


def test_keepalives_re_registrations_and_answering_arqs_are_not_events(clock, tmp_path):
    acct, lines = accounting(clock, tmp_path, "[Gatekeeper::Acct]\nStatusAcct=required")
    acct(registered(keepalive=True))
    acct(registered(new=False))
    acct(admitted(answer_call=True))
    assert lines == []
    acct(unregistered())
    assert lines == ["EP|Unregister|10.0.0.1:1720|700,alice"]


def test_the_event_list_limits_a_module(clock, tmp_path):
    acct, lines = accounting(clock, tmp_path, "[Gatekeeper::Acct]\nStatusAcct=required;stop")
    acct(registered())
    acct(admitted())
    acct(cdr())
    assert lines == [f"CALL|Stop|10.0.0.1:1720|10.0.0.2:1721|{DASHED}"]
    assert acct.file is None
    assert not (tmp_path / "cdr.log").exists()


def test_the_embedded_default_writes_cdr_log_in_the_working_directory(clock, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    acct = Accounting(AcctSettings(), clock, lines.append)
    acct(cdr())
    acct.close()
    assert (tmp_path / "cdr.log").read_text().startswith("CDR|7|a0 a1 a2")
    assert lines == []


def test_a_failing_module_does_not_stop_the_others(clock, tmp_path, logged):
    def broken_emit(text: str) -> None:
        raise RuntimeError("status port gone")

    settings = AcctSettings(
        modules=(ModuleEntry("StatusAcct", "required", frozenset({"stop"})),
                 ModuleEntry("FileAcct", "required", frozenset({"stop"}))),
        file=FileAcctSettings(detail_file=str(tmp_path / "cdr.log")))
    acct = Accounting(settings, clock, broken_emit)
    acct(cdr())
    assert (tmp_path / "cdr.log").read_text().startswith("CDR|7|")
    assert any(e.get("module") == "StatusAcct" and "log_failure" in e for e in logged)


def test_counters_cover_every_module(clock, tmp_path):
    class Refusing:
        def request(self, method, url, data=None, headers=None):
            return fail(ConnectionRefusedError())

    settings = AcctSettings(
        modules=(ModuleEntry("FileAcct", "required", frozenset({"stop"})),
                 ModuleEntry("HttpAcct", "required", frozenset({"stop"}))),
        file=FileAcctSettings(detail_file=str(tmp_path / "cdr.log")),
        http=HttpAcctSettings(targets=(("stop", HttpTarget("http://127.0.0.1:9/cdr")),),
                              queue_size=1))
    acct = Accounting(settings, clock, lambda text: None, Refusing())
    acct(cdr(1))
    acct(cdr(2))
    counters = acct.counters()
    assert (counters["written"], counters["queued"], counters["dropped"]) == (2, 1, 1)
    assert (counters["file_written"], counters["http_sent"], counters["http_retries"]) == (
        2, 0, 1)
    acct.close()
    assert clock.getDelayedCalls() == []
