"""Event lines exactly as GnuGk prints them (seed document and 5.15 transcripts)."""

from __future__ import annotations

import calendar
import time

import pytest

from gatekeeper import events as ev
from gatekeeper.h225.ras import dialled_digits, h323_id, parse_guid
from gatekeeper.status.formats import format_event, rfc822

CALL = parse_guid("c4-20-2c-89-11-e8-f1-11-9e-9d-02-fc-00-00-00-01")
NOBODY_CALL = parse_guid("6a-c6-78-9b-11-e8-f1-11-83-8c-02-fc-00-00-00-01")
BOB, ALICE = (h323_id("bob"),), (h323_id("alice"),)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def at(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


def test_rfc822_in_utc_says_gmt(utc):
    assert rfc822(at("2026-11-26 14:15:43")) == "Thu, 26 Nov 2026 14:15:43 GMT"


def test_rfc822_with_an_offset(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Taipei")
    time.tzset()
    try:
        assert rfc822(at("2002-06-26 09:29:55")) == "Wed, 26 Jun 2002 17:29:55 +0800"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("event, line", [
    (ev.GatekeeperConfirmed(("127.0.0.1", 34991), BOB, "terminal"),
     "GCF|127.0.0.1|bob|terminal;"),
    (ev.GatekeeperRejected(("10.0.0.9", 1719), BOB, "terminal", "terminalExcluded"),
     "GRJ|10.0.0.9|bob|terminal|terminalExcluded;"),
    (ev.EndpointRegistered(("10.1.1.10", 1720), ("10.1.1.10", 1719),
                           (dialled_digits("800"), h323_id("Wei")), "terminal", "1289_endp"),
     "RCF|10.1.1.10:1720|800:dialedDigits=Wei:h323_ID|terminal|1289_endp;"),
    (ev.RegistrationRejected(("10.0.0.5", 1719), (dialled_digits("800"),), "terminal",
                             "duplicateAlias"),
     "RRJ|10.0.0.5|800:dialedDigits|terminal|duplicateAlias;"),
    (ev.EndpointUnregistered(("127.0.0.1", 36508), "592591008_endp", ALICE),
     "UCF|127.0.0.1|592591008_endp;"),
    (ev.UnregistrationRejected(("127.0.0.1", 1), "7_endp", "notCurrentlyRegistered"),
     "URJ|127.0.0.1|7_endp|notCurrentlyRegistered;"),
    (ev.UnregistrationRequested(("127.0.0.1", 34991), "358356101_endp", "maintenance"),
     "URQ|127.0.0.1:34991|358356101_endp|maintenance;"),
    (ev.InfoRequested(("10.0.0.1", 1719), "5_endp"), "IRQ|10.0.0.1:1719|5_endp;"),
    (ev.AdmissionConfirmed(("127.0.0.1", 1732), "592591008_endp", 31948, BOB, ALICE, False, CALL,
                           True, 1),
     "ACF|127.0.0.1:1732|592591008_endp|31948|bob:h323_ID|alice:h323_ID|false|"
     "c4-20-2c-89-11-e8-f1-11-9e-9d-02-fc-00-00-00-01|ToBeDecided;"),
    (ev.AdmissionConfirmed(("127.0.0.1", 1731), "358356101_endp", 31948, BOB, ALICE, True, CALL,
                           True, 1),
     "ACF|127.0.0.1:1731|358356101_endp|31948|bob:h323_ID|alice:h323_ID|true|"
     "c4-20-2c-89-11-e8-f1-11-9e-9d-02-fc-00-00-00-01| ;"),
    (ev.AdmissionConfirmed(("10.0.1.49", 1720), "4048_CGK1", 25263, (h323_id("frank"),),
                           (h323_id("gunter"),), False, CALL, False, 1),
     "ACF|10.0.1.49:1720|4048_CGK1|25263|frank:h323_ID|gunter:h323_ID|false|"
     "c4-20-2c-89-11-e8-f1-11-9e-9d-02-fc-00-00-00-01|Direct;"),
    (ev.AdmissionRejected(("127.0.0.1", 1732), (h323_id("nobody"),), ALICE, False,
                          "calledPartyNotRegistered", NOBODY_CALL),
     "ARJ|127.0.0.1:1732|nobody:h323_ID|alice:h323_ID|false|calledPartyNotRegistered|"
     "6a-c6-78-9b-11-e8-f1-11-83-8c-02-fc-00-00-00-01;"),
    (ev.DisengageConfirmed(("127.0.0.1", 36508), "592591008_endp", 31948, "normalDrop", CALL),
     "DCF|127.0.0.1|592591008_endp|31948|normalDrop|"
     "c4-20-2c-89-11-e8-f1-11-9e-9d-02-fc-00-00-00-01;"),
    (ev.DisengageRejected(("10.0.0.1", 1719), "9_endp", 12, "notRegistered", None),
     "DRJ|10.0.0.1|9_endp|12|notRegistered|;"),
    (ev.BandwidthConfirmed(("10.0.0.1", 1719), "9_endp", 640), "BCF|10.0.0.1|9_endp|640;"),
    (ev.BandwidthRejected(("10.0.0.1", 1719), "9_endp", 9999, "insufficientResources"),
     "BRJ|10.0.0.1|9_endp|9999|insufficientResources;"),
    (ev.LocationConfirmed(("10.0.0.7", 1719), "9_endp", (dialled_digits("800"),), ()),
     "LCF|10.0.0.7|9_endp|800:dialedDigits|;"),
    (ev.LocationRejected(("10.0.0.7", 1719), (dialled_digits("801"),), (), "notRegistered"),
     "LRJ|10.0.0.7|801:dialedDigits||notRegistered;"),
    (ev.RouteRequested(("10.0.0.1", 1720), "endp_4711", 1234, "CC", "Suzi:h323_ID", None),
     "RouteRequest|10.0.0.1:1720|endp_4711|1234|CC|Suzi:h323_ID|||||ARQ;"),
    (ev.ConfigReloaded(), "Full Config reloaded."),
])
def test_event_lines(event, line):
    assert format_event(event) == line


def test_removal_by_the_gatekeeper_prints_no_ucf():
    assert format_event(ev.EndpointUnregistered(None, "1_endp", BOB, "ttlExpired")) is None


def test_cdr_line_matches_gnugk(utc):
    record = ev.CallDetailRecord(
        call_number=1, call_id=CALL, conference_id=CALL,
        setup_time=at("2026-11-26 14:15:40"), connect_time=at("2026-11-26 14:15:43"),
        disconnect_time=at("2026-11-26 14:15:53"),
        caller_signal_address=("127.0.0.1", 39310), caller_endpoint_id="592591008_endp",
        callee_signal_address=("127.0.0.1", 1731), callee_endpoint_id="358356101_endp",
        destination_info=BOB, source_info=ALICE, gatekeeper_name="GnuGk")
    assert format_event(record) == (
        "CDR|1|c4 20 2c 89 11 e8 f1 11 9e 9d 02 fc 00 00 00 01|10|Thu, 26 Nov 2026 14:15:43 GMT|"
        "Thu, 26 Nov 2026 14:15:53 GMT|127.0.0.1:39310|592591008_endp|127.0.0.1:1731|"
        "358356101_endp|bob:h323_ID|alice:h323_ID|GnuGk;")


def test_unconnected_call_cdr_has_zero_duration(utc):
    record = ev.CallDetailRecord(
        call_number=2, call_id=CALL, conference_id=CALL, setup_time=at("2026-11-26 14:00:00"),
        connect_time=None, disconnect_time=at("2026-11-26 14:00:09"),
        caller_signal_address=("10.0.0.1", 1720), caller_endpoint_id="1_endp",
        callee_signal_address=None, callee_endpoint_id="", destination_info=BOB, source_info=ALICE,
        gatekeeper_name="GK")
    fields = format_event(record).split("|")
    assert fields[3] == "0" and fields[4] == "unconnected"
