"""The manhole: a Python prompt inside the running gatekeeper, over SSH.

Off by default.  ``[Manhole]`` turns it on::

    [Manhole]
    Enable=1
    ; Port: default 2222; 0 = any free port
    Port=2222
    AuthorizedKeys=/etc/gatekeeper/manhole_authorized_keys
    PasswordFile=/etc/gatekeeper/manhole_passwd
    ; HostKey: default ./manhole_host_key
    HostKey=/var/lib/gatekeeper/manhole_host_key

The prompt is twisted.conch's :class:`~twisted.conch.manhole.ColoredManhole`
behind an SSH server that listens on 127.0.0.1 and nowhere else, whatever
the configuration says: reaching it from another machine takes an SSH tunnel
to the gatekeeper's host first.  There are no built-in credentials: logins
are checked against

- ``AuthorizedKeys=``: an OpenSSH ``authorized_keys`` file (one public key a
  line; ``#`` comments).  Any user name is accepted with a listed key.  Key
  options (``from=``, ``command=``, ...) are refused rather than ignored,
  since the manhole could not honour them.
- ``PasswordFile=``: ``user:PBKDF2:<salt>-<hex>`` lines, the hash of
  :func:`gatekeeper.status.auth.hash_password`; ``python -m
  gatekeeper.status.passwd USER`` prints ``USER=PBKDF2:...``, which is
  accepted as it is.  Clear-text passwords are refused.

``Enable=1`` with neither is a configuration error.  Both files are read
when the configuration is parsed, so a bad one is refused before anything
listens, and :meth:`ManholeService.update` swaps in the credentials of a
reloaded configuration.

The SSH host key is read from ``HostKey=`` (default ``manhole_host_key`` in
the working directory).  If that file does not exist, an Ed25519 key is
generated there, written with mode 0600, and reused on every later start, so
that clients see the same host key.  A host key that others may read is
refused, as sshd refuses one.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from zope.interface import implementer

from twisted.application import service
from twisted.conch import manhole, manhole_ssh
from twisted.conch.error import ValidPublicKey
from twisted.conch.insults import insults
from twisted.conch.ssh import keys
from twisted.cred import portal as cred_portal
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ProcessDone
from twisted.internet.interfaces import IListeningPort, IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from gatekeeper.configfile import ConfigError, IniFile, as_bool, as_int, unknown_key
from gatekeeper.status.auth import check_password

__all__ = ["DEFAULT_HOST_KEY", "DEFAULT_PORT", "LOOPBACK", "SECTION", "ManholeService",
           "ManholeSettings", "gatekeeper_namespace", "load_or_create_host_key",
           "manhole_service", "parse_manhole"]

SECTION = "Manhole"
DEFAULT_PORT = 2222
#: Relative paths are relative to the gatekeeper's working directory.
DEFAULT_HOST_KEY = "manhole_host_key"
#: The only address the manhole ever listens on.
LOOPBACK = "127.0.0.1"

# ``user:PBKDF2:<salt>-<hex>`` (or ``user=...``, as gatekeeper.status.passwd prints it).
_PASSWORD_LINE = re.compile(r"^([^\s:=]+)[:=](PBKDF2:[^\s-]+-[0-9A-Fa-f]{128})$")
# Keys named like an address: the manhole never listens anywhere but LOOPBACK.
_ADDRESS_KEYS = {"interface", "bind", "address", "home", "listen", "host"}


@dataclass(frozen=True, slots=True)
class ManholeSettings:
    """``[Manhole]``, parsed, with the credentials the files held."""

    enabled: bool = False
    port: int = DEFAULT_PORT
    authorized_keys_file: str | None = None
    password_file: str | None = None
    host_key_file: str = DEFAULT_HOST_KEY
    #: The public key blobs of ``authorized_keys_file``.
    authorized_keys: tuple[bytes, ...] = ()
    #: ``(user, "PBKDF2:<salt>-<hex>")`` from ``password_file``.
    passwords: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: The configuration file these came from (for error messages).
    config_path: str = "<defaults>"


def parse_manhole(ini: IniFile, enable: bool | None = None,
                  ) -> tuple[ManholeSettings, list[str]]:
    """Read ``[Manhole]``: the settings and the warnings (unknown keys).

    ``enable`` overrides ``Enable=`` (the ``--manhole`` option).  Raises
    :class:`ConfigError` naming section, key and value for a value that
    cannot be used, a credentials file that cannot be read or parsed, or an
    enabled manhole without any credentials.
    """
    path = ini.path
    warnings: list[str] = []
    enabled = False
    port = DEFAULT_PORT
    keys_file: str | None = None
    password_file: str | None = None
    host_key = DEFAULT_HOST_KEY
    enable_item = ("Enable", "0")
    for key, value in ini.items(SECTION):
        lowered = key.lower()
        if lowered == "enable":
            enabled = as_bool(path, SECTION, key, value)
            enable_item = (key, value)
        elif lowered == "port":
            port = as_int(path, SECTION, key, value, 0, 65535)
        elif lowered == "authorizedkeys":
            keys_file = _nonempty(path, key, value)
        elif lowered == "passwordfile":
            password_file = _nonempty(path, key, value)
        elif lowered == "hostkey":
            host_key = _nonempty(path, key, value)
        elif lowered in _ADDRESS_KEYS:
            warnings.append(unknown_key(path, SECTION, key)
                            + f" (the manhole listens on {LOOPBACK} only)")
        else:
            warnings.append(unknown_key(path, SECTION, key))
    if enable is not None:
        enabled = enable
        enable_item = ("Enable", "1 (--manhole)" if enable else "0")
    if not enabled:
        return ManholeSettings(enabled=False, port=port, authorized_keys_file=keys_file,
                               password_file=password_file, host_key_file=host_key,
                               config_path=path), warnings
    if keys_file is None and password_file is None:
        raise ConfigError(path, SECTION, *enable_item,
                          "the manhole has no built-in credentials: set AuthorizedKeys= "
                          "or PasswordFile=")
    authorized = _read_authorized_keys(path, keys_file) if keys_file else ()
    passwords = _read_password_file(path, password_file) if password_file else ()
    if Path(host_key).exists():
        _read_host_key(path, host_key)   # refuse a bad one now, before anything listens
    return ManholeSettings(True, port, keys_file, password_file, host_key, authorized,
                           passwords, path), warnings


def _nonempty(path: str, key: str, value: str) -> str:
    if not value:
        raise ConfigError(path, SECTION, key, value, "a file name is needed")
    return value


def _read_text(path: str, key: str, file_name: str) -> str:
    try:
        return Path(file_name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(path, SECTION, key, file_name, f"cannot read the file: {reason}") from None


def _content_lines(text: str) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _read_authorized_keys(path: str, file_name: str) -> tuple[bytes, ...]:
    blobs = []
    for number, line in _content_lines(_read_text(path, "AuthorizedKeys", file_name)):
        try:
            key = keys.Key.fromString(line.encode("utf-8"))
        except Exception:   # keys raises BadKeyError, ValueError, binascii.Error, ...
            problem = (f"line {number}: not a public key (key options such as from= or "
                       f"command= are not supported)")
            raise ConfigError(path, SECTION, "AuthorizedKeys", file_name, problem) from None
        if not key.isPublic():
            raise ConfigError(path, SECTION, "AuthorizedKeys", file_name,
                              f"line {number}: a private key; list public keys only")
        blobs.append(key.blob())
    if not blobs:
        raise ConfigError(path, SECTION, "AuthorizedKeys", file_name, "no key in the file")
    return tuple(blobs)


def _read_password_file(path: str, file_name: str) -> tuple[tuple[str, str], ...]:
    entries = []
    for number, line in _content_lines(_read_text(path, "PasswordFile", file_name)):
        match = _PASSWORD_LINE.match(line)
        if match is None:
            # The line itself may hold a password: never quote it.
            raise ConfigError(path, SECTION, "PasswordFile", file_name,
                              f"line {number}: expected user:PBKDF2:<salt>-<hex> "
                              f"(make one with python -m gatekeeper.status.passwd USER)")
        entries.append((match.group(1), match.group(2)))
    if not entries:
        raise ConfigError(path, SECTION, "PasswordFile", file_name, "no user in the file")
    return tuple(entries)


def _read_host_key(path: str, file_name: str) -> keys.Key:
    try:
        mode = os.stat(file_name).st_mode
        data = Path(file_name).read_bytes()
    except OSError as error:
        raise ConfigError(path, SECTION, "HostKey", file_name,
                          f"cannot read the file: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(path, SECTION, "HostKey", file_name,
                          f"others may read it (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
    try:
        key = keys.Key.fromString(data)
    except Exception:
        raise ConfigError(path, SECTION, "HostKey", file_name,
                          "not an unencrypted SSH private key") from None
    if key.isPublic():
        raise ConfigError(path, SECTION, "HostKey", file_name,
                          "a public key; the host key must be the private key")
    return key


_log = Logger()


def load_or_create_host_key(file_name: str, config_path: str = "<defaults>") -> keys.Key:
    """The private host key in ``file_name``; an Ed25519 key is generated and
    written there (mode 0600) first if the file does not exist."""
    if not os.path.exists(file_name):
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = keys.Key(ed25519.Ed25519PrivateKey.generate())
        try:
            descriptor = os.open(file_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_host_key(config_path, file_name)   # another process won the race
        except OSError as error:
            raise ConfigError(config_path, SECTION, "HostKey", file_name,
                              f"cannot create the host key: {error.strerror}") from None
        with os.fdopen(descriptor, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(key.toString("openssh"))
        _log.info("manhole: generated an SSH host key in {file} ({fingerprint})",
                  file=file_name, fingerprint=_fingerprint(key))
        return key
    return _read_host_key(config_path, file_name)


def _fingerprint(key: keys.Key) -> str:
    return key.fingerprint(keys.FingerprintFormats.SHA256_BASE64)


def gatekeeper_namespace(gatekeeper: Any) -> dict[str, Any]:
    """The names a manhole session starts with, for a GatekeeperService."""
    return {"service": gatekeeper, "gatekeeper": gatekeeper, "registry": gatekeeper.registry,
            "calls": gatekeeper.calls, "bus": gatekeeper.bus}


# -- credentials ---------------------------------------------------------------


@implementer(ICredentialsChecker)
class _KeyChecker:
    """The public keys of ``AuthorizedKeys=``, for any user name."""

    credentialInterfaces = (ISSHPrivateKey,)

    def __init__(self, blobs: tuple[bytes, ...]) -> None:
        self.blobs = frozenset(blobs)

    def requestAvatarId(self, credentials: ISSHPrivateKey) -> defer.Deferred:
        if credentials.blob not in self.blobs:
            return defer.fail(UnauthorizedLogin("key not authorized"))
        if not credentials.signature:
            # The client asked whether this key would do: yes, now sign.
            return defer.fail(ValidPublicKey())
        try:
            valid = keys.Key.fromString(credentials.blob).verify(credentials.signature,
                                                                 credentials.sigData)
        except Exception:   # a malformed signature is a failed login, nothing more
            valid = False
        if not valid:
            return defer.fail(UnauthorizedLogin("bad signature"))
        return defer.succeed(credentials.username)


# Matches no password; checked for unknown users so that they take as long.
_NO_USER = "PBKDF2:0-" + "0" * 128


@implementer(ICredentialsChecker)
class _PasswordChecker:
    """``PasswordFile=`` entries.  The hash (about 0.1 s) runs in the reactor's
    thread pool when there is one, so that a login does not stall RAS."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, entries: tuple[tuple[str, str], ...], reactor: Any) -> None:
        self.entries = dict(entries)
        self.reactor = reactor

    def _check(self, user: str, password: str) -> bool:
        stored = self.entries.get(user)
        if stored is None:
            check_password(_NO_USER, password)   # the same work as for a known user
            return False
        return check_password(stored, password)

    def requestAvatarId(self, credentials: IUsernamePassword) -> defer.Deferred:
        user = credentials.username.decode("utf-8", "replace")
        password = credentials.password.decode("utf-8", "replace")
        if IReactorThreads.providedBy(self.reactor):
            checked = deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                        self._check, user, password)
        else:
            checked = defer.maybeDeferred(self._check, user, password)

        def decide(ok: bool) -> bytes:
            if not ok:
                raise UnauthorizedLogin("wrong user name or password")
            return credentials.username

        return checked.addCallback(decide)


class _AuditedPortal(cred_portal.Portal):
    """A portal that logs each refused login (Twisted logs them at debug)."""

    log = Logger()

    def login(self, credentials: Any, mind: Any, *interfaces: Any) -> defer.Deferred:
        def refused(failure: Failure) -> Failure:
            if failure.check(UnauthorizedLogin):
                method = "password" if IUsernamePassword.providedBy(credentials) else "key"
                self.log.warn("manhole: login refused for {user} ({method})",
                              user=credentials.username.decode("utf-8", "replace"),
                              method=method)
            return failure

        return super().login(credentials, mind, *interfaces).addErrback(refused)


def _portal(settings: ManholeSettings, realm: cred_portal.IRealm,
            reactor: Any) -> cred_portal.Portal:
    checkers = []
    if settings.authorized_keys:
        checkers.append(_KeyChecker(settings.authorized_keys))
    if settings.passwords:
        checkers.append(_PasswordChecker(settings.passwords, reactor))
    return _AuditedPortal(realm, checkers)


# -- sessions ------------------------------------------------------------------


class _Pipe:
    """One direction of a :class:`_Terminal`: the transport a protocol writes to."""

    def __init__(self, write: Any, lose_connection: Any) -> None:
        self.write = write
        self.loseConnection = lose_connection

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))


class _Terminal:
    """Joins an SSH session channel to the terminal protocol running the prompt.

    Bytes from the client go to the terminal and its output goes back; when
    either side ends, the session ends with exit status 0 (so that ``ssh``
    exits 0 after Ctrl-D or ``exit()``).
    """

    def __init__(self, channel: Any, terminal: insults.ServerProtocol,
                 width: int, height: int) -> None:
        self.channel = channel              # an SSHSessionProcessProtocol
        self.terminal = terminal
        self.ended = False
        channel.makeConnection(_Pipe(terminal.dataReceived, self.end))
        terminal.makeConnection(_Pipe(channel.write, self.end))
        terminal.terminalProtocol.terminalSize(width, height)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.channel.processEnded(Failure(ProcessDone(0)))

    def closed(self) -> None:
        """The client closed the channel."""
        self.ended = True
        self.terminal.connectionLost(Failure(ConnectionDone("session closed")))


class _Session(manhole_ssh.TerminalSession):
    """A manhole session: works without a pty request (80x24), follows window
    size changes and ends on EOF (the base class raises on all three)."""

    width, height = 80, 24
    _terminal: _Terminal | None = None

    def openShell(self, proto: Any) -> None:
        self._terminal = _Terminal(proto, self.chainedProtocolFactory(), self.width, self.height)

    def windowChanged(self, newWindowSize: tuple[int, ...]) -> None:
        self.height, self.width = newWindowSize[:2]
        if self._terminal is not None:
            self._terminal.terminal.terminalProtocol.terminalSize(self.width, self.height)

    def eofReceived(self) -> None:
        if self._terminal is not None:
            self._terminal.end()

    def closed(self) -> None:
        if self._terminal is not None and not self._terminal.ended:
            self._terminal.closed()


class _Realm(manhole_ssh.TerminalRealm):
    sessionFactory = _Session
    log = Logger()

    def __init__(self, namespace: dict[str, Any]) -> None:
        super().__init__()
        self.namespace = namespace
        # Each session gets its own copy: names one session binds do not
        # change what the next one finds.
        self.chainedProtocolFactory = lambda: insults.ServerProtocol(
            manhole.ColoredManhole, dict(self.namespace))

    def requestAvatar(self, avatarId: bytes, mind: Any, *interfaces: Any) -> tuple:
        self.log.info("manhole: {user} logged in", user=avatarId.decode("utf-8", "replace"))
        return super().requestAvatar(avatarId, mind, *interfaces)


class _Factory(manhole_ssh.ConchFactory):
    def __init__(self, portal: cred_portal.Portal, host_key: keys.Key) -> None:
        super().__init__(portal)
        # Per instance: ConchFactory's class-level dicts are shared.
        self.publicKeys = {host_key.sshType(): host_key.public()}
        self.privateKeys = {host_key.sshType(): host_key}


class ManholeService(service.Service):
    """The manhole's SSH server on 127.0.0.1.

    ``listening`` is the listening port while the service runs and ``port``
    the TCP port number it is bound to (useful with ``Port=0``).
    """

    log = Logger()
    listening: IListeningPort | None = None

    def __init__(self, settings: ManholeSettings, namespace: dict[str, Any],
                 reactor: Any = None) -> None:
        if not settings.enabled:
            raise ValueError("the manhole is not enabled in these settings")
        self.settings = settings
        self.namespace = namespace
        self.reactor = reactor
        self.host_key = load_or_create_host_key(settings.host_key_file, settings.config_path)
        self.realm = _Realm(namespace)
        self.factory = _Factory(_portal(settings, self.realm, reactor), self.host_key)
        self.setName("manhole")

    @property
    def port(self) -> int | None:
        return self.listening.getHost().port if self.listening is not None else None

    def update(self, settings: ManholeSettings) -> None:
        """Use the credentials of a reloaded configuration for the next logins
        (the port and the host key are read only at start)."""
        if not settings.enabled:
            return
        self.settings = settings
        self.factory.portal = _portal(settings, self.realm, self.reactor)

    def startService(self) -> None:
        super().startService()
        reactor = self.reactor
        if reactor is None:
            from twisted.internet import reactor   # only when the caller gave none
        self.listening = reactor.listenTCP(self.settings.port, self.factory, interface=LOOPBACK)
        methods = [name for name, present in (("key", self.settings.authorized_keys),
                                              ("password", self.settings.passwords)) if present]
        self.log.info("manhole: SSH on {address}:{port} ({methods}), host key {fingerprint}",
                      address=LOOPBACK, port=self.port, methods=" and ".join(methods),
                      fingerprint=_fingerprint(self.host_key))

    def stopService(self) -> defer.Deferred | None:
        super().stopService()
        listening, self.listening = self.listening, None
        if listening is not None:
            return defer.maybeDeferred(listening.stopListening)
        return None


def manhole_service(settings: ManholeSettings, namespace: dict[str, Any],
                    reactor: Any = None) -> ManholeService:
    """The manhole service for enabled ``settings``: an SSH server on
    127.0.0.1:``settings.port`` whose sessions start with ``namespace``.

    ``reactor`` (IReactorTCP and IReactorThreads) is the one
    ``tap.makeService`` uses.  The host key is loaded, or generated, here:
    a :class:`ConfigError` names ``HostKey`` if that fails.
    """
    return ManholeService(settings, namespace, reactor)
