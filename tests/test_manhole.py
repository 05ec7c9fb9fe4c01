"""The manhole: ``[Manhole]`` parsing, the service tree, and real SSH logins.

The parsing and service tests use no reactor (``MemoryReactor``).  The login
tests run the manhole service in a child Python process with a real reactor
on 127.0.0.1 and log in with OpenSSH's ``ssh`` (Debian package
``openssh-client``); they are skipped with that reason when it is missing.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactor

from gatekeeper.configfile import ConfigError, IniFile, read_ini
from gatekeeper.manhole import (DEFAULT_PORT, LOOPBACK, ManholeService, load_or_create_host_key,
                                manhole_service, parse_manhole)
from gatekeeper.status.auth import hash_password
from gkprocess import ROOT

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIElEFtVQXD+dInPFxZpdoCxpAdStnCiIvSwlvbVXZugO "
              "ops@example")


def ini(text: str, path: str = "gk.ini") -> IniFile:
    return read_ini(text, path)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "authorized_keys"
    path.write_text(f"# the operators\n\n{PUBLIC_KEY}\n")
    return path


# -- [Manhole] -------------------------------------------------------------


def test_manhole_is_off_without_a_manhole_section():
    settings, warnings = parse_manhole(ini("[Gatekeeper::Main]\nName=gk\n"))
    assert settings.enabled is False
    assert settings.port == DEFAULT_PORT == 2222
    assert warnings == []


def test_enable_without_credentials_is_refused_naming_section_key_and_value():
    with pytest.raises(ConfigError) as caught:
        parse_manhole(ini("[Manhole]\nEnable=1\nPort=2300\n"))
    error = caught.value
    assert (error.path, error.section, error.key, error.value) == ("gk.ini", "Manhole", "Enable", "1")
    assert "no built-in credentials" in str(error)
    assert str(error).startswith("gk.ini: [Manhole] Enable=1: ")


def test_the_manhole_option_enables_it_and_still_needs_credentials(key_file):
    with pytest.raises(ConfigError, match=r"\[Manhole\] Enable=1 \(--manhole\)"):
        parse_manhole(ini("[Manhole]\nPort=2300\n"), enable=True)
    settings, _ = parse_manhole(ini(f"[Manhole]\nAuthorizedKeys={key_file}\n"), enable=True)
    assert settings.enabled


def test_authorized_keys_and_password_file_are_read_when_parsed(tmp_path, key_file):
    passwords = tmp_path / "passwd"
    entry = hash_password("s3cret")
    passwords.write_text(f"admin:{entry}\n# comment\nops={hash_password('other')}\n")
    settings, warnings = parse_manhole(ini(
        f"[Manhole]\nEnable=yes\nPort=0\nAuthorizedKeys={key_file}\nPasswordFile={passwords}\n"
        f"HostKey={tmp_path / 'hk'}\n"))
    assert warnings == []
    assert settings.enabled and settings.port == 0
    assert len(settings.authorized_keys) == 1
    assert settings.authorized_keys[0].startswith(b"\x00\x00\x00\x0bssh-ed25519")
    assert [user for user, _ in settings.passwords] == ["admin", "ops"]
    assert settings.passwords[0][1] == entry
    assert entry not in repr(settings)            # secrets are not logged with the settings
    assert not (tmp_path / "hk").exists()         # parsing creates nothing


def test_unknown_keys_warn_and_an_address_is_never_taken(key_file):
    settings, warnings = parse_manhole(ini(
        f"[Manhole]\nEnable=1\nAuthorizedKeys={key_file}\nInterface=0.0.0.0\nColour=1\n"))
    assert settings.enabled
    assert warnings[0] == ("gk.ini: [Manhole] Interface: unknown key, ignored "
                           "(the manhole listens on 127.0.0.1 only)")
    assert warnings[1] == "gk.ini: [Manhole] Colour: unknown key, ignored"


@pytest.mark.parametrize("line, key, value, problem", [
    ("Port=70000", "Port", "70000", "between 0 and 65535"),
    ("Port=ssh", "Port", "ssh", "not a whole number"),
    ("Enable=maybe", "Enable", "maybe", "not a boolean"),
    ("AuthorizedKeys=/nonexistent/keys", "AuthorizedKeys", "/nonexistent/keys",
     "cannot read the file"),
])
def test_bad_values_are_refused_naming_the_key(line, key, value, problem):
    with pytest.raises(ConfigError) as caught:
        parse_manhole(ini(f"[Manhole]\nEnable=1\nPasswordFile=/dev/null\n{line}\n"))
    assert (caught.value.key, caught.value.value) == (key, value)
    assert problem in caught.value.problem


def test_authorized_keys_with_options_are_refused_not_ignored(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f'from="10.0.0.0/8" {PUBLIC_KEY}\n')
    with pytest.raises(ConfigError, match="line 1: not a public key") as caught:
        parse_manhole(ini(f"[Manhole]\nEnable=1\nAuthorizedKeys={keys}\n"))
    assert (caught.value.key, caught.value.value) == ("AuthorizedKeys", str(keys))


def test_an_empty_key_file_gives_no_access_and_is_refused(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# nobody yet\n")
    with pytest.raises(ConfigError, match="no key in the file"):
        parse_manhole(ini(f"[Manhole]\nEnable=1\nAuthorizedKeys={keys}\n"))


def test_clear_text_passwords_are_refused_without_quoting_them(tmp_path):
    passwords = tmp_path / "passwd"
    passwords.write_text("admin:hunter2\n")
    with pytest.raises(ConfigError) as caught:
        parse_manhole(ini(f"[Manhole]\nEnable=1\nPasswordFile={passwords}\n"))
    assert "line 1: expected user:PBKDF2:<salt>-<hex>" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_host_key_is_generated_once_with_mode_0600_and_reused(tmp_path):
    path = tmp_path / "manhole_host_key"
    first = load_or_create_host_key(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not first.isPublic() and first.sshType() == b"ssh-ed25519"
    again = load_or_create_host_key(str(path))
    assert again == first


def test_a_host_key_others_can_read_is_refused(tmp_path, key_file):
    path = tmp_path / "hk"
    load_or_create_host_key(str(path))
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600") as caught:
        parse_manhole(ini(f"[Manhole]\nEnable=1\nAuthorizedKeys={key_file}\nHostKey={path}\n"))
    assert caught.value.key == "HostKey"


# -- the service tree, without a reactor ------------------------------------


def enabled_settings(tmp_path: Path, key_file: Path, port: int = 0):
    settings, _ = parse_manhole(ini(
        f"[Manhole]\nEnable=1\nPort={port}\nAuthorizedKeys={key_file}\n"
        f"HostKey={tmp_path / 'hk'}\nInterface=0.0.0.0\n"))
    return settings


def test_service_listens_on_loopback_only_whatever_the_file_says(tmp_path, key_file):
    reactor = MemoryReactor()
    service = manhole_service(enabled_settings(tmp_path, key_file, 2300), {}, reactor)
    assert isinstance(service, ManholeService) and service.name == "manhole"
    assert reactor.tcpServers == []          # nothing listens before the service starts
    service.startService()
    [(port, factory, _, interface)] = reactor.tcpServers
    assert (port, interface) == (2300, LOOPBACK)
    assert factory.portal.listCredentialsInterfaces()
    assert service.port == 2300
    service.stopService()
    assert service.listening is None


def test_service_creates_its_host_key_when_built(tmp_path, key_file):
    manhole_service(enabled_settings(tmp_path, key_file), {}, MemoryReactor())
    assert stat.S_IMODE((tmp_path / "hk").stat().st_mode) == 0o600


def test_a_disabled_manhole_is_not_built(tmp_path):
    with pytest.raises(ValueError):
        manhole_service(parse_manhole(ini(""))[0], {}, MemoryReactor())


def test_update_swaps_in_reloaded_credentials(tmp_path, key_file):
    from twisted.cred.credentials import IUsernamePassword

    service = manhole_service(enabled_settings(tmp_path, key_file), {}, MemoryReactor())
    assert IUsernamePassword not in service.factory.portal.listCredentialsInterfaces()
    passwords = tmp_path / "passwd"
    passwords.write_text(f"admin:{hash_password('x')}\n")
    reloaded, _ = parse_manhole(ini(f"[Manhole]\nEnable=1\nPasswordFile={passwords}\n"))
    service.update(reloaded)
    assert service.factory.portal.listCredentialsInterfaces() == [IUsernamePassword]


def _outcome(deferred):
    """What a Deferred that has already fired holds."""
    results = []
    deferred.addBoth(results.append)
    assert len(results) == 1
    return results[0]


def test_checkers_accept_only_a_listed_key_with_a_valid_signature_and_the_right_password(
        tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from twisted.conch.error import ValidPublicKey
    from twisted.conch.ssh import keys
    from twisted.cred.credentials import SSHPrivateKey, UsernamePassword
    from twisted.cred.error import UnauthorizedLogin

    listed, other = (keys.Key(ed25519.Ed25519PrivateKey.generate()) for _ in range(2))
    (tmp_path / "keys").write_text(listed.public().toString("openssh").decode() + "\n")
    (tmp_path / "passwd").write_text(f"admin:{hash_password('pw')}\n")
    settings, _ = parse_manhole(ini(
        f"[Manhole]\nEnable=1\nAuthorizedKeys={tmp_path / 'keys'}\n"
        f"PasswordFile={tmp_path / 'passwd'}\nHostKey={tmp_path / 'hk'}\n"))
    # MemoryReactor has no thread pool: the password is checked at once.
    portal = manhole_service(settings, {}, MemoryReactor()).factory.portal

    def check(credentials):
        return _outcome(portal.checkers[_iface_of(credentials)].requestAvatarId(credentials))

    def key_login(key, signature=None):
        return check(SSHPrivateKey(b"ops", b"ssh-ed25519", key.public().blob(),
                                   b"session data", signature))

    assert key_login(listed, listed.sign(b"session data")) == b"ops"
    assert _outcome_type(key_login(listed)) is ValidPublicKey          # "would it do?"
    assert _outcome_type(key_login(listed, other.sign(b"session data"))) is UnauthorizedLogin
    assert _outcome_type(key_login(listed, b"garbage")) is UnauthorizedLogin
    assert _outcome_type(key_login(other, other.sign(b"session data"))) is UnauthorizedLogin

    def password_login(user, password):
        return check(UsernamePassword(user, password))

    assert password_login(b"admin", b"pw") == b"admin"
    assert _outcome_type(password_login(b"admin", b"PW")) is UnauthorizedLogin
    assert _outcome_type(password_login(b"root", b"pw")) is UnauthorizedLogin


def _iface_of(credentials):
    from twisted.cred.credentials import ISSHPrivateKey, IUsernamePassword

    return ISSHPrivateKey if ISSHPrivateKey.providedBy(credentials) else IUsernamePassword


def _outcome_type(result):
    from twisted.python.failure import Failure

    assert isinstance(result, Failure), result
    return type(result.value)


# -- real SSH logins ----------------------------------------------------------

SERVER = r"""
import json, sys
from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from gatekeeper.configfile import read_ini
from gatekeeper.manhole import manhole_service, parse_manhole

class FakeRegistry:
    def __init__(self, endpoints):
        self.endpoints = endpoints
    def __len__(self):
        return len(self.endpoints)
    def __iter__(self):
        return iter(self.endpoints)

globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
path = sys.argv[1]
settings, warnings = parse_manhole(read_ini(open(path).read(), path))
service = manhole_service(settings, {"registry": FakeRegistry(["alice", "bob", "carol"])}, reactor)
service.startService()
host = service.listening.getHost()
print(json.dumps({"host": host.host, "port": service.port, "warnings": warnings}), flush=True)
reactor.run()
"""

ASKPASS = "#!/bin/sh\nprintf '%s\\n' \"$MANHOLE_TEST_PASSWORD\"\n"

needs_ssh = pytest.mark.skipif(
    shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
    reason="OpenSSH client not installed (Debian package openssh-client): "
           "the login tests use the real ssh")


class ManholeProcess:
    """The manhole service in a child process, and ssh logins to it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        for name in ("operator", "stranger"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                            "-f", str(tmp / name)], check=True, capture_output=True)
        (tmp / "authorized_keys").write_text((tmp / "operator.pub").read_text())
        (tmp / "passwd").write_text(f"admin:{hash_password('right horse')}\n")
        host_key = load_or_create_host_key(str(tmp / "host_key"))
        self.config = tmp / "gk.ini"
        self.config.write_text(
            f"[Manhole]\nEnable=1\nPort=0\nInterface=0.0.0.0\n"
            f"AuthorizedKeys={tmp / 'authorized_keys'}\nPasswordFile={tmp / 'passwd'}\n"
            f"HostKey={tmp / 'host_key'}\n")
        askpass = tmp / "askpass"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        self.stderr = open(tmp / "server.log", "wb")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(self.config)],
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise AssertionError(f"manhole server did not start:\n{self.log()}")
        self.started = json.loads(line)
        self.port = self.started["port"]
        (tmp / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {host_key.public().toString('openssh').decode()}\n")

    def log(self) -> str:
        return (self.tmp / "server.log").read_text(errors="replace")

    def ssh(self, stdin: bytes, *, key: str | None = None, password: str | None = None,
            user: str = "admin", tty: bool = True) -> subprocess.CompletedProcess:
        command = ["ssh", "-F", "/dev/null", "-p", str(self.port), "-tt" if tty else "-T",
                   "-o", f"UserKnownHostsFile={self.tmp / 'known_hosts'}",
                   "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                   "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                   "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
        env = dict(os.environ)
        env.pop("SSH_AUTH_SOCK", None)
        if key is not None:
            command += ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey",
                        "-i", str(self.tmp / key)]
        else:
            command += ["-o", "PreferredAuthentications=password",
                        "-o", "NumberOfPasswordPrompts=1", "-o", "PubkeyAuthentication=no"]
            env.update(SSH_ASKPASS=str(self.tmp / "askpass"), SSH_ASKPASS_REQUIRE="force",
                       DISPLAY=env.get("DISPLAY", ":0"), MANHOLE_TEST_PASSWORD=password or "")
        command.append(f"{user}@127.0.0.1")
        return subprocess.run(command, input=stdin, capture_output=True, timeout=30, env=env,
                              start_new_session=True)   # no controlling tty: askpass, not a prompt

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.stderr.close()


@pytest.fixture(scope="module")
def manhole(tmp_path_factory):
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH client not installed (Debian package openssh-client)")
    process = ManholeProcess(tmp_path_factory.mktemp("manhole"))
    try:
        yield process
    finally:
        process.stop()


# The answer (3 * 7 + 1000) cannot come from the echo of what was typed.
EXPRESSION = b"len(registry) * 7 + 1000\r"
EXIT = b"\x04"   # Ctrl-D on an empty line ends the session


@needs_ssh
def test_key_login_evaluates_an_expression_over_the_registry(manhole):
    result = manhole.ssh(EXPRESSION + EXIT, key="operator")
    output = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, (result.stderr, output, manhole.log())
    assert "1021" in output
    assert "admin logged in" in manhole.log()


@needs_ssh
def test_a_session_without_a_pty_works_and_ends_at_end_of_input(manhole):
    result = manhole.ssh(EXPRESSION, key="operator", tty=False)   # no Ctrl-D: EOF ends it
    assert result.returncode == 0, (result.stderr, result.stdout, manhole.log())
    assert b"1021" in result.stdout


@needs_ssh
def test_a_key_not_in_authorized_keys_is_refused(manhole):
    result = manhole.ssh(EXPRESSION + EXIT, key="stranger")
    assert result.returncode == 255
    assert b"Permission denied" in result.stderr
    assert b"1021" not in result.stdout
    assert "manhole: login refused for admin (key)" in manhole.log()


@needs_ssh
def test_password_login_works_and_a_wrong_password_is_refused(manhole):
    good = manhole.ssh(EXPRESSION + EXIT, password="right horse")
    assert good.returncode == 0, (good.stderr, manhole.log())
    assert b"1021" in good.stdout
    started = time.monotonic()
    bad = manhole.ssh(EXPRESSION + EXIT, password="wrong horse")
    assert bad.returncode == 255
    assert b"Permission denied" in bad.stderr
    assert b"1021" not in bad.stdout
    assert time.monotonic() - started < 20
    unknown = manhole.ssh(EXPRESSION + EXIT, password="right horse", user="mallory")
    assert unknown.returncode == 255 and b"1021" not in unknown.stdout
    assert "manhole: login refused for mallory (password)" in manhole.log()


def _listening(port: int) -> list[tuple[str, str]]:
    """(table, local address in hex) of the LISTEN sockets on ``port``."""
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.append((table, address))
    return found


@needs_ssh
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
def test_nothing_listens_on_a_non_loopback_address(manhole):
    assert manhole.started["host"] == "127.0.0.1"
    assert "Interface: unknown key" in manhole.started["warnings"][0]
    # 0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex
    assert _listening(manhole.port) == [("tcp", "0100007F")]
