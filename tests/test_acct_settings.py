"""[Gatekeeper::Acct], [FileAcct], [StatusAcct], [HttpAcct] parsing."""

from __future__ import annotations

import pytest

from gatekeeper.accounting.settings import (DEFAULT_STATUS_TEMPLATES, AcctSettings, Rotation,
                                      parse_acct)
from gatekeeper.configfile import ConfigError, read_ini


def parse(text: str):
    return parse_acct(read_ini(text, "gk.ini"))


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value


def test_without_an_acct_section_fileacct_writes_cdr_log():
    settings, warnings = parse("[Gatekeeper::Main]\nName=gk\n")
    assert [m.name for m in settings.modules] == ["FileAcct"]
    assert settings.module("FileAcct").events == {"stop"}
    assert settings.file.detail_file == "cdr.log"
    assert settings.file.cdr_string is None          # the standard CDR line
    assert settings.module("StatusAcct") is None and settings.module("HttpAcct") is None
    assert warnings == []
    assert settings == AcctSettings()


def test_the_acct_section_runs_only_the_modules_it_names():
    settings, _ = parse("[Gatekeeper::Acct]\nStatusAcct=optional;start,stop\n")
    assert settings.module("FileAcct") is None
    status = settings.module("StatusAcct")
    assert (status.control, status.events) == ("optional", {"start", "stop"})


def test_an_empty_acct_section_runs_no_module():
    settings, _ = parse("[Gatekeeper::Acct]\n")
    assert settings.modules == ()


def test_a_module_without_events_logs_every_event_it_supports():
    settings, _ = parse("[Gatekeeper::Acct]\nstatusacct=required\nFileAcct=sufficient\n")
    assert settings.module("StatusAcct").events == {
        "start", "stop", "update", "connect", "alert", "register", "unregister"}
    assert settings.module("FileAcct").events == {"stop"}
    assert settings.module("FileAcct").control == "sufficient"


def test_an_event_the_module_cannot_log_is_a_warning():
    settings, warnings = parse("[Gatekeeper::Acct]\nFileAcct=required;start,stop\n")
    assert settings.module("FileAcct").events == {"stop"}
    assert warnings == ["gk.ini: [Gatekeeper::Acct] FileAcct: FileAcct does not log "
                        "'start' events, ignored"]


def test_an_unsupported_module_is_a_warning():
    settings, warnings = parse("[Gatekeeper::Acct]\nRadAcct=required;start,stop\n"
                               "FileAcct=required\n")
    assert [m.name for m in settings.modules] == ["FileAcct"]
    assert warnings == ["gk.ini: [Gatekeeper::Acct] RadAcct: accounting module not "
                        "supported, ignored"]


@pytest.mark.parametrize("value, problem", [
    ("mandatory;stop", "control must be one of"),
    ("required;stop,hangup", "unknown event 'hangup'"),
    ("", "expected control"),
])
def test_a_bad_module_line_is_refused(value, problem):
    error = refused(f"[Gatekeeper::Acct]\nFileAcct={value}\n")
    assert (error.path, error.section, error.key, error.value) == (
        "gk.ini", "Gatekeeper::Acct", "FileAcct", value)
    assert problem in error.problem


def test_fileacct_keys():
    settings, warnings = parse(
        "[FileAcct]\nDetailFile=/var/log/gk/cdr.log\nStandardCDRFormat=0\n"
        "CDRString=%g|%n|%d\nTimestampFormat=MySQL\nRotate=daily\nRotateTime=23:00\n")
    assert settings.file.detail_file == "/var/log/gk/cdr.log"
    assert settings.file.cdr_string == "%g|%n|%d"
    assert settings.file.timestamp_format == "MySQL"
    assert settings.file.rotation == Rotation("daily", hour=23, minute=0)
    assert warnings == []


def test_a_cdrstring_alone_selects_the_custom_format():
    settings, _ = parse("[FileAcct]\nCDRString=%n\n")
    assert settings.file.cdr_string == "%n"


def test_standardcdrformat_1_wins_over_a_cdrstring():
    settings, _ = parse("[FileAcct]\nCDRString=%n\nStandardCDRFormat=1\n")
    assert settings.file.cdr_string is None


@pytest.mark.parametrize("text, rotation", [
    ("Rotate=hourly", Rotation("hourly", minute=59)),
    ("Rotate=Hourly\nRotateTime=45", Rotation("hourly", minute=45)),
    ("Rotate=daily", Rotation("daily", hour=0, minute=59)),
    ("Rotate=weekly\nRotateDay=Sun\nRotateTime=00:59", Rotation("weekly", minute=59, day=0)),
    ("Rotate=weekly\nRotateDay=friday\nRotateTime=6", Rotation("weekly", hour=6, minute=0,
                                                               day=5)),
    ("Rotate=weekly\nRotateDay=3", Rotation("weekly", minute=59, day=3)),
    ("Rotate=monthly", Rotation("monthly", minute=59, day=1)),
    ("Rotate=monthly\nRotateDay=31\nRotateTime=23:00", Rotation("monthly", hour=23, minute=0,
                                                                day=31)),
    ("Rotate=L10000", Rotation("lines", limit=10000)),
    ("Rotate=L2k", Rotation("lines", limit=2000)),
    ("Rotate=l1M", Rotation("lines", limit=1_000_000)),
    ("Rotate=S10k", Rotation("size", limit=10 * 1024)),
    ("Rotate=S2M", Rotation("size", limit=2 * 1024 * 1024)),
    ("Rotate=s500", Rotation("size", limit=500)),
])
def test_rotation_values(text, rotation):
    settings, _ = parse(f"[FileAcct]\n{text}\n")
    assert settings.file.rotation == rotation


@pytest.mark.parametrize("text, key, value", [
    ("Rotate=yearly", "Rotate", "yearly"),
    ("Rotate=L", "Rotate", "L"),
    ("Rotate=S10g", "Rotate", "S10g"),
    ("Rotate=L0", "Rotate", "L0"),
    ("Rotate=hourly\nRotateTime=60", "RotateTime", "60"),
    ("Rotate=daily\nRotateTime=24:00", "RotateTime", "24:00"),
    ("Rotate=daily\nRotateTime=noon", "RotateTime", "noon"),
    ("Rotate=weekly\nRotateDay=Caturday", "RotateDay", "Caturday"),
    ("Rotate=weekly\nRotateDay=7", "RotateDay", "7"),
    ("Rotate=monthly\nRotateDay=32", "RotateDay", "32"),
    ("StandardCDRFormat=maybe", "StandardCDRFormat", "maybe"),
    ("StandardCDRFormat=0", "StandardCDRFormat", "0"),
    ("DetailFile=", "DetailFile", ""),
])
def test_bad_fileacct_values_are_refused_naming_section_key_value(text, key, value):
    error = refused(f"[FileAcct]\n{text}\n")
    assert (error.path, error.section, error.key, error.value) == ("gk.ini", "FileAcct",
                                                                   key, value)
    assert f"[FileAcct] {key}={value}:" in str(error)


def test_statusacct_defaults_are_gnugks():
    settings, _ = parse("[StatusAcct]\n")
    assert settings.status.template("start") == (
        "CALL|Start|%{caller-ip}:%{caller-port}|%{callee-ip}:%{callee-port}|%{CallId}")
    assert settings.status.template("stop") == (
        "CALL|Stop|%{caller-ip}:%{caller-port}|%{callee-ip}:%{callee-port}|%{CallId}")
    assert settings.status.template("register") == (
        "EP|Register|%{endpoint-ip}:%{endpoint-port}|%{aliases}")
    assert settings.status.template("unregister") == (
        "EP|Unregister|%{endpoint-ip}:%{endpoint-port}|%{aliases}")


def test_statusacct_templates_can_be_replaced_or_emptied():
    settings, warnings = parse("[StatusAcct]\nStopEvent=CALL|Stop|%{CallId}\nStartEvent=\n"
                               "TimestampFormat=RFC822\nColour=blue\n")
    assert settings.status.template("stop") == "CALL|Stop|%{CallId}"
    assert settings.status.template("start") == ""
    assert settings.status.template("register") == DEFAULT_STATUS_TEMPLATES["register"]
    assert settings.status.timestamp_format == "RFC822"
    assert warnings == ["gk.ini: [StatusAcct] Colour: unknown key, ignored"]


def test_httpacct_keys():
    settings, warnings = parse(
        "[Gatekeeper::Acct]\nHttpAcct=required;stop,register\n"
        "[HttpAcct]\nMethod=get\nStopURL=http://127.0.0.1/cdr?id=%{CallId}\n"
        "RegisterURL=http://127.0.0.1/ep\nRegisterBody=%{epid}\n"
        "QueueSize=50\nRetryMin=250\nRetryMax=4000\nTimeout=1500\n")
    http = settings.http
    assert http.method == "GET"
    assert http.target("stop").url == "http://127.0.0.1/cdr?id=%{CallId}"
    assert http.target("stop").body == ""
    assert http.target("register").body == "%{epid}"
    assert http.target("start") is None
    assert (http.queue_size, http.retry_min, http.retry_max, http.timeout) == (
        50, 0.25, 4.0, 1.5)
    assert warnings == []


def test_httpacct_defaults():
    settings, _ = parse("[HttpAcct]\nStopURL=http://127.0.0.1/\n")
    http = settings.http
    assert (http.method, http.queue_size, http.retry_min, http.retry_max) == (
        "POST", 10_000, 1.0, 60.0)


def test_httpacct_enabled_without_any_url_warns():
    _, warnings = parse("[Gatekeeper::Acct]\nHttpAcct=required\n")
    assert any("HttpAcct is enabled but no <Event>URL is set" in w for w in warnings)


@pytest.mark.parametrize("text, key, value", [
    ("Method=PUT", "Method", "PUT"),
    ("QueueSize=0", "QueueSize", "0"),
    ("QueueSize=lots", "QueueSize", "lots"),
    ("RetryMin=-5", "RetryMin", "-5"),
    ("RetryMin=5000\nRetryMax=1000", "RetryMax", "1000"),
    ("Timeout=soon", "Timeout", "soon"),
])
def test_bad_httpacct_values_are_refused(text, key, value):
    error = refused(f"[HttpAcct]\n{text}\n")
    assert (error.section, error.key, error.value) == ("HttpAcct", key, value)


def test_unknown_httpacct_keys_warn():
    _, warnings = parse("[HttpAcct]\nStopURL=http://127.0.0.1/\nUser=me\n")
    assert warnings == ["gk.ini: [HttpAcct] User: unknown key, ignored"]
