"""[GkStatus::Auth]: rules, passwords, and the login dialogue byte for byte."""

from __future__ import annotations

import subprocess
import sys

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.status.auth import AuthRules, Verdict, check_password, hash_password
from gatekeeper.status.telnet import GREETING


def rules(**items) -> AuthRules:
    return AuthRules.from_items([(k.replace("_", "."), v) for k, v in items.items()])


def test_no_section_lets_in_loopback_only():
    default = AuthRules()
    assert default.decide("127.0.0.1") is Verdict.ALLOW
    assert default.decide("::1") is Verdict.ALLOW
    assert default.decide("10.0.0.1") is Verdict.FORBID


def test_a_section_without_a_rule_forbids_as_gnugk_does():
    assert AuthRules.from_items([]).decide("127.0.0.1") is Verdict.FORBID


@pytest.mark.parametrize("items, ip, verdict", [
    ([("rule", "allow")], "10.0.0.9", Verdict.ALLOW),
    ([("rule", "forbid")], "127.0.0.1", Verdict.FORBID),
    ([("rule", "explicit"), ("10.0.0.1", "allow"), ("default", "forbid")], "10.0.0.1", Verdict.ALLOW),
    ([("rule", "explicit"), ("10.0.0.1", "allow"), ("default", "forbid")], "10.0.0.2", Verdict.FORBID),
    ([("rule", "explicit"), ("default", "allow")], "10.0.0.2", Verdict.ALLOW),
    ([("rule", "explicit"), ("10.0.0.1", "0")], "10.0.0.1", Verdict.FORBID),
    ([("rule", "regex"), ("regex", r"^10\.0\.")], "10.0.3.4", Verdict.ALLOW),
    ([("rule", "regex"), ("regex", r"^10\.0\.")], "192.168.0.1", Verdict.FORBID),
    ([("rule", "regex"), ("regex", r"^10\.0\."), ("10.0.0.7", "forbid")], "10.0.0.7", Verdict.FORBID),
    ([("rule", "password"), ("admin", "x")], "10.0.0.1", Verdict.LOGIN),
    ([("rule", "explicit|password"), ("10.0.0.1", "allow")], "10.0.0.1", Verdict.ALLOW),
    ([("rule", "explicit|password"), ("10.0.0.1", "allow")], "10.0.0.2", Verdict.LOGIN),
    ([("rule", "explicit&password"), ("10.0.0.1", "allow")], "10.0.0.1", Verdict.LOGIN),
    ([("rule", "explicit&password"), ("10.0.0.1", "allow")], "10.0.0.2", Verdict.FORBID),
    ([("rule", "forbid|allow&password")], "10.0.0.2", Verdict.LOGIN),
])
def test_rules_combine_left_to_right(items, ip, verdict):
    assert AuthRules.from_items(items).decide(ip) is verdict


@pytest.mark.parametrize("items, text", [
    ([("rule", "allow|nonsense")], "unknown rule"),
    ([("rule", "allow|")], "bad rule"),
    ([("10.0.0.1", "maybe")], "expected allow or forbid"),
    ([("regex", "(")], "bad regular expression"),
    ([("DelayReject", "soon")], "not a number"),
])
def test_bad_entries_are_refused(items, text):
    with pytest.raises(ValueError, match=text):
        AuthRules.from_items(items)


def test_pbkdf2_entries():
    entry = hash_password("secret", salt="00ff")
    assert entry.startswith("PBKDF2:00ff-") and len(entry.split("-")[1]) == 128
    assert check_password(entry, "secret")
    assert not check_password(entry, "Secret")
    assert check_password(entry.upper().replace("PBKDF2:00FF", "PBKDF2:00ff"), "secret")
    assert hash_password("secret") != hash_password("secret")   # fresh salts
    assert check_password("plain", "plain") and not check_password("plain", "other")


def test_passwd_command_prints_an_entry_that_checks():
    done = subprocess.run([sys.executable, "-m", "gatekeeper.status.passwd", "gkadmin"],
                          input=b"s3cret\n", capture_output=True, check=True)
    user, _, entry = done.stdout.decode().strip().partition("=")
    assert user == "gkadmin" and check_password(entry, "s3cret")
    refused = subprocess.run([sys.executable, "-m", "gatekeeper.status.passwd"],
                             capture_output=True)
    assert refused.returncode == 2 and b"usage" in refused.stderr


# --- the dialogue ------------------------------------------------------------------------


def service(auth: AuthRules, name: str = "GnuGkAuth") -> GatekeeperService:
    clock = Clock()
    clock.advance(1_795_702_393)
    gk = GatekeeperService(RasSettings(gatekeeper_id=name), ListenSettings(), clock)
    gk.status.auth = auth
    return gk


def connect(gk, host="127.0.0.1"):
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 49696),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 7002))
    session = gk.status.buildProtocol(None)
    session.makeConnection(transport)
    return session, transport


def said(transport) -> bytes:
    data = transport.value()
    transport.clear()
    return data


PASSWORD_RULES = [("rule", "password"), ("gkadmin", hash_password("secret"))]


def test_password_login_as_gnugk():
    gk = service(AuthRules.from_items(PASSWORD_RULES))
    session, transport = connect(gk, "10.0.0.5")
    assert said(transport) == GREETING + b"\r\nGnuGkAuth login: "
    session.dataReceived(b"gkadmin\n")
    assert said(transport) == b"\xff\xfb\x01Password: "
    session.dataReceived(b"secret\r\n")
    reply = said(transport)
    assert reply.startswith(b"\r\n\xff\xfc\x01Version:\r\n") and reply.endswith(b";\r\n")
    assert session.logged_in and session.user == "gkadmin"
    session.dataReceived(b"who\n")
    assert said(transport) == b"  1\t10.0.0.5:49696=>127.0.0.1:7002\tgkadmin\r\n;\r\n"


def test_three_wrong_passwords_are_forbidden():
    gk = service(AuthRules.from_items(PASSWORD_RULES))
    session, transport = connect(gk, "10.0.0.5")
    said(transport)
    for attempt, (user, password) in enumerate([(b"gkadmin", b"wrong"), (b"gkadmin", b"wrong2"),
                                                 (b"nosuchuser", b"x")]):
        session.dataReceived(user + b"\n")
        assert said(transport) == b"\xff\xfb\x01Password: "
        session.dataReceived(password + b"\n")
        if attempt < 2:
            assert said(transport) == b"\r\n\xff\xfc\x01\r\nGnuGkAuth login: "
    assert said(transport) == b"\r\n\xff\xfc\x01\r\nAccess forbidden!\r\n"
    assert transport.disconnecting and not session.logged_in
    # nothing typed before logging in ran as a command
    assert b"Version" not in transport.value()


def test_forbidden_ip_is_told_and_dropped():
    gk = service(AuthRules.from_items([("rule", "forbid")]))
    session, transport = connect(gk)
    assert said(transport) == GREETING + b"\r\nAccess forbidden!\r\n"
    assert transport.disconnecting


def test_delay_reject_holds_the_answer():
    gk = service(AuthRules.from_items(PASSWORD_RULES + [("DelayReject", "2")]))
    session, transport = connect(gk, "10.0.0.5")
    said(transport)
    session.dataReceived(b"gkadmin\nwrong\n")
    assert said(transport) == b"\xff\xfb\x01Password: \r\n\xff\xfc\x01"
    gk.clock.advance(1.9)
    assert said(transport) == b""
    gk.clock.advance(0.2)
    assert said(transport) == b"\r\nGnuGkAuth login: "


def test_login_timeout_drops_an_idle_client():
    gk = service(AuthRules.from_items(PASSWORD_RULES + [("LoginTimeout", "30")]))
    session, transport = connect(gk, "10.0.0.5")
    said(transport)
    gk.clock.advance(29)
    assert not transport.disconnecting
    gk.clock.advance(2)
    assert said(transport) == b"\r\nAccess forbidden!\r\n" and transport.disconnecting


def test_max_status_clients():
    gk = service(AuthRules.from_items([("rule", "allow")]))
    gk.status.max_clients = 2
    connect(gk)
    connect(gk)
    _, third = connect(gk)
    assert third.value().endswith(b"\r\nAccess forbidden!\r\n") and third.disconnecting


def test_client_negotiation_is_answered_not_executed():
    gk = service(AuthRules.from_items([("rule", "allow")]))
    session, transport = connect(gk)
    said(transport)
    # telnet's usual opening: WILL TERMINAL-TYPE, DO SUPPRESS-GO-AHEAD ack, WILL NAWS
    session.dataReceived(b"\xff\xfb\x18\xff\xfb\x03\xff\xfd\x05\xff\xfb\x1f")
    assert said(transport) == b"\xff\xfe\x18\xff\xfe\x1f"   # DONT TERMINAL-TYPE, DONT NAWS
    session.dataReceived(b"\xff\xfd\x01")                       # DO ECHO: we never echo
    assert said(transport) == b""


def test_gnugk_encrypted_passwords_never_work_and_keyfilled_is_no_user():
    from gatekeeper import config

    parsed = config.parse(config.read_ini(
        "[GkStatus::Auth]\nrule=password\nKeyFilled=123\nalice=q7Xw9=\n"
        "bob=PBKDF2:c2FsdA-00\n", "gk.ini"))
    rules = parsed.status_auth
    assert set(rules.users) == {"bob"}
    assert any("KeyFilled: GnuGk-encrypted passwords are not supported" in w
               for w in parsed.warnings)
