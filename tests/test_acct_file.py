"""FileAcct: the CDR line, durability, rotation, and I/O errors."""

from __future__ import annotations

import calendar
import dataclasses
import os
import stat
import time

import pytest
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.accounting.file import FileAcct, next_rotation
from gatekeeper.accounting.settings import FileAcctSettings, Rotation
from gatekeeper.h225.ras import dialled_digits, h323_id
from gatekeeper.status.formats import format_event

CALL_ID = bytes(range(0xA0, 0xB0))
CONF_ID = bytes(range(0x10, 0x20))
STANDARD_LINE = (
    "CDR|7|a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af|45|"
    "Thu, 26 Nov 2026 14:15:43 GMT|Thu, 26 Nov 2026 14:16:28 GMT|"
    "10.0.0.1:1720|1_endp|10.0.0.2:1721|2_endp|800:dialedDigits|"
    "700:dialedDigits=alice:h323_ID|gk;")


def at(text: str) -> float:
    """A UTC time as seconds since the epoch."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def clock(utc):
    clock = Clock()
    clock.advance(at("2026-11-26 14:16:28"))
    return clock


def record(number: int = 7, connected: bool = True) -> ev.CallDetailRecord:
    return ev.CallDetailRecord(
        call_number=number, call_id=CALL_ID, conference_id=CONF_ID,
        setup_time=at("2026-11-26 14:15:40"),
        connect_time=at("2026-11-26 14:15:43") if connected else None,
        disconnect_time=at("2026-11-26 14:16:28"),
        caller_signal_address=("10.0.0.1", 1720), caller_endpoint_id="1_endp",
        callee_signal_address=("10.0.0.2", 1721), callee_endpoint_id="2_endp",
        destination_info=(dialled_digits("800"),),
        source_info=(dialled_digits("700"), h323_id("alice")),
        gatekeeper_name="gk", bandwidth=1280, release_reason="normalDrop",
        caller_ip="10.0.0.1", callee_ip="10.0.0.2")


def file_acct(tmp_path, clock, **settings) -> FileAcct:
    return FileAcct(FileAcctSettings(detail_file=str(tmp_path / "cdr.log"), **settings), clock)


def lines(path) -> list[str]:
    with open(path, encoding="utf-8") as text:
        return text.read().splitlines()


# -- the line -------------------------------------------------------------------


def test_the_standard_line_is_the_status_port_cdr(tmp_path, clock):
    acct = file_acct(tmp_path, clock)
    assert acct.write_cdr(record()) is True
    assert lines(tmp_path / "cdr.log") == [STANDARD_LINE]
    assert format_event(record()) == STANDARD_LINE
    assert acct.written == 1 and acct.failed == 0


def test_an_unconnected_call_says_unconnected(tmp_path, clock):
    acct = file_acct(tmp_path, clock)
    acct.write_cdr(record(connected=False))
    assert lines(tmp_path / "cdr.log")[0].startswith(
        "CDR|7|a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af|0|unconnected|")


def test_cdrs_are_appended_to_an_existing_file(tmp_path, clock):
    (tmp_path / "cdr.log").write_text("an older line\n")
    acct = file_acct(tmp_path, clock)
    acct.write_cdr(record(7))
    acct.write_cdr(record(8))
    assert lines(tmp_path / "cdr.log") == ["an older line", STANDARD_LINE,
                                          STANDARD_LINE.replace("CDR|7|", "CDR|8|")]


def test_a_new_file_is_private_to_its_owner(tmp_path, clock):
    file_acct(tmp_path, clock)
    assert stat.S_IMODE(os.stat(tmp_path / "cdr.log").st_mode) & 0o077 == 0


def test_a_cdrstring_template_with_gnugk_parameters(tmp_path, clock):
    template = ("%g|%n|%d|%t|%{CallId}|%{ConfId}|%{setup-time}|%{connect-time}|"
                "%{disconnect-time}|%{caller-ip}|%{caller-port}|%{callee-ip}|%{callee-port}|"
                "%{caller-epid}|%{callee-epid}|%{src-info}|%{dest-info}|%{Calling-Station-Id}|"
                "%{Called-Station-Id}|%{Dialed-Number}|%u|%{bandwidth}|%{release-reason}|"
                "[%c]|[%{no-such-thing}]|[%z]|100%%|%{unclosed")
    acct = file_acct(tmp_path, clock, cdr_string=template, timestamp_format="MySQL")
    acct.write_cdr(record())
    assert lines(tmp_path / "cdr.log") == [
        "gk|7|45|48|a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af|"
        "10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f|2026-11-26 14:15:40|"
        "2026-11-26 14:15:43|2026-11-26 14:16:28|10.0.0.1|1720|10.0.0.2|1721|1_endp|2_endp|"
        "700:dialedDigits=alice:h323_ID|800:dialedDigits|700|800|800|alice|1280|normalDrop|"
        "[]|[]|[]|100%|%{unclosed"]


def test_the_documented_standard_template_gives_the_standard_line(tmp_path, clock):
    """GnuGk: StandardCDRFormat is this CDRString with TimestampFormat=RFC822."""
    template = ("CDR|%n|%{CallId}|%d|%{connect-time}|%{disconnect-time}|%{caller-ip}:"
                "%{caller-port}|%{caller-epid}|%{callee-ip}:%{callee-port}|%{callee-epid}|"
                "%{dest-info}|%{src-info}|%g;")
    acct = file_acct(tmp_path, clock, cdr_string=template, timestamp_format="RFC822")
    acct.write_cdr(record())
    assert lines(tmp_path / "cdr.log") == [STANDARD_LINE]


def test_cisco_timestamps_are_gnugks_default(tmp_path, clock):
    acct = file_acct(tmp_path, clock, cdr_string="%{connect-time}")
    acct.write_cdr(record())
    assert lines(tmp_path / "cdr.log") == ["14:15:43.000 UTC Thu Nov 26 2026"]


def test_a_q931_cause_fills_percent_c(tmp_path, clock):
    acct = file_acct(tmp_path, clock, cdr_string="%c")
    acct.write_cdr(dataclasses.replace(record(), release_reason="16"))
    assert lines(tmp_path / "cdr.log") == ["16"]


# -- durability -----------------------------------------------------------------


def test_each_cdr_is_flushed_and_fsynced_before_write_returns(tmp_path, clock, monkeypatch):
    synced: list[tuple[int, list[str]]] = []
    path = tmp_path / "cdr.log"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((fd, lines(path)))      # what is in the file when fsync runs
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    acct = file_acct(tmp_path, clock)
    acct.write_cdr(record(7))
    assert len(synced) == 1
    assert synced[0][1] == [STANDARD_LINE]      # flushed before the fsync
    acct.write_cdr(record(8))
    assert len(synced) == 2
    assert os.fstat(synced[1][0]).st_ino == os.stat(path).st_ino


def test_a_failing_fsync_is_counted_and_logged_not_raised(tmp_path, clock, monkeypatch, logged):
    def fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    acct = file_acct(tmp_path, clock)
    assert acct.write_cdr(record()) is False
    assert (acct.written, acct.failed) == (0, 1)
    assert any(e.get("number") == 7 and "not written" in e.get("log_format", "")
               for e in logged)


def test_an_unwritable_file_is_counted_logged_and_retried(tmp_path, clock, logged):
    missing = tmp_path / "not-yet" / "cdr.log"
    acct = FileAcct(FileAcctSettings(detail_file=str(missing)), clock)
    assert acct.write_cdr(record(7)) is False
    assert acct.failed == 1
    errors = [e for e in logged if e.get("log_level") and e["log_level"].name == "error"]
    assert any(e.get("path") == str(missing) for e in errors)
    missing.parent.mkdir()
    assert acct.write_cdr(record(8)) is True
    assert lines(missing) == [STANDARD_LINE.replace("CDR|7|", "CDR|8|")]


# -- rotation by lines and size ---------------------------------------------------


def test_rotation_by_line_count(tmp_path, clock):
    acct = file_acct(tmp_path, clock, rotation=Rotation("lines", limit=2))
    acct.write_cdr(record(1))
    assert os.listdir(tmp_path) == ["cdr.log"]
    acct.write_cdr(record(2))
    rotated = tmp_path / "cdr.log.20261126-141628"
    assert sorted(os.listdir(tmp_path)) == ["cdr.log", "cdr.log.20261126-141628"]
    assert [line.split("|")[1] for line in lines(rotated)] == ["1", "2"]
    assert lines(tmp_path / "cdr.log") == []
    clock.advance(1)
    acct.write_cdr(record(3))
    assert [line.split("|")[1] for line in lines(tmp_path / "cdr.log")] == ["3"]
    assert acct.rotations == 1


def test_line_rotation_counts_the_lines_already_in_the_file(tmp_path, clock):
    (tmp_path / "cdr.log").write_text("old 1\nold 2\n")
    acct = file_acct(tmp_path, clock, rotation=Rotation("lines", limit=3))
    acct.write_cdr(record(1))
    assert lines(tmp_path / "cdr.log.20261126-141628") == ["old 1", "old 2", STANDARD_LINE
                                                           .replace("CDR|7|", "CDR|1|")]


def test_two_rotations_in_one_second_keep_both_files(tmp_path, clock):
    acct = file_acct(tmp_path, clock, rotation=Rotation("lines", limit=1))
    acct.write_cdr(record(1))
    acct.write_cdr(record(2))
    assert sorted(os.listdir(tmp_path)) == [
        "cdr.log", "cdr.log.20261126-141628", "cdr.log.20261126-141628.1"]
    assert lines(tmp_path / "cdr.log.20261126-141628.1")[0].startswith("CDR|2|")


def test_rotation_by_size(tmp_path, clock):
    size = len(STANDARD_LINE) + 1
    acct = file_acct(tmp_path, clock, rotation=Rotation("size", limit=2 * size))
    acct.write_cdr(record(1))
    assert os.listdir(tmp_path) == ["cdr.log"]
    acct.write_cdr(record(2))
    assert os.path.getsize(tmp_path / "cdr.log.20261126-141628") == 2 * size
    assert os.path.getsize(tmp_path / "cdr.log") == 0


# -- rotation by time -----------------------------------------------------------


def test_hourly_rotation_runs_on_the_clock(tmp_path, clock):
    acct = file_acct(tmp_path, clock, rotation=Rotation("hourly", minute=59))
    acct.write_cdr(record(1))
    clock.advance(at("2026-11-26 14:58:59") - clock.seconds())
    assert os.listdir(tmp_path) == ["cdr.log"]
    clock.advance(1)
    assert sorted(os.listdir(tmp_path)) == ["cdr.log", "cdr.log.20261126-145900"]
    assert lines(tmp_path / "cdr.log.20261126-145900")[0].startswith("CDR|1|")
    acct.write_cdr(record(2))
    assert lines(tmp_path / "cdr.log")[0].startswith("CDR|2|")
    clock.advance(3600)
    assert "cdr.log.20261126-155900" in os.listdir(tmp_path)
    assert acct.rotations == 2


def test_close_stops_the_rotation_timer_and_closes_the_file(tmp_path, clock):
    acct = file_acct(tmp_path, clock, rotation=Rotation("daily", hour=0, minute=59))
    assert len(clock.getDelayedCalls()) == 1
    acct.close()
    assert clock.getDelayedCalls() == []
    assert acct._handle is None


@pytest.mark.parametrize("rotation, now, due", [
    (Rotation("hourly", minute=45), "2026-11-26 14:16:28", "2026-11-26 14:45:00"),
    (Rotation("hourly", minute=15), "2026-11-26 14:16:28", "2026-11-26 15:15:00"),
    (Rotation("hourly", minute=16), "2026-11-26 14:16:00", "2026-11-26 15:16:00"),
    (Rotation("daily", hour=23, minute=0), "2026-11-26 14:16:28", "2026-11-26 23:00:00"),
    (Rotation("daily", hour=0, minute=59), "2026-11-26 14:16:28", "2026-11-27 00:59:00"),
    # 2026-11-26 is a Thursday; RotateDay 0 is Sunday.
    (Rotation("weekly", hour=0, minute=59, day=0), "2026-11-26 14:16:28",
     "2026-11-29 00:59:00"),
    (Rotation("weekly", hour=18, minute=0, day=4), "2026-11-26 14:16:28",
     "2026-11-26 18:00:00"),
    (Rotation("weekly", hour=9, minute=0, day=4), "2026-11-26 14:16:28",
     "2026-12-03 09:00:00"),
    (Rotation("monthly", hour=0, minute=59, day=1), "2026-11-26 14:16:28",
     "2026-12-01 00:59:00"),
    (Rotation("monthly", hour=23, minute=0, day=31), "2026-11-26 14:16:28",
     "2026-11-30 23:00:00"),
    (Rotation("monthly", hour=23, minute=0, day=31), "2026-12-31 23:30:00",
     "2027-01-31 23:00:00"),
    (Rotation("monthly", hour=23, minute=0, day=30), "2027-01-31 12:00:00",
     "2027-02-28 23:00:00"),
])
def test_next_timed_rotation(utc, rotation, now, due):
    assert next_rotation(rotation, at(now)) == at(due)


def test_no_timed_rotation_for_line_or_size_rotation(utc):
    assert next_rotation(Rotation("lines", limit=5), 0.0) is None
    assert next_rotation(Rotation(), 0.0) is None
