"""What a user sees when the gatekeeper cannot start: one clear line, no traceback.

The real program (``twistd -n gatekeeper``) is started for each failure; the
pieces behind it (the service naming a port it could not open, the hook that
keeps Python from printing the traceback, the options refusing a file, the
discovery socket's join) are checked on their own too.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.internet.error import CannotListenError, MulticastJoinError
from twisted.internet.task import Clock

from gatekeeper import tap
from gatekeeper.events import EventBus
from gatekeeper.ras.controller import RasController, RasSettings
from gatekeeper.ras.protocol import DiscoveryProtocol, RasProtocol
from gatekeeper.service import GatekeeperService, ListenError, ListenSettings

from gkprocess import ROOT, free_port

ABSENT = "192.0.2.77"   # TEST-NET-1: an address this host does not have


def twistd(workdir: Path, *args: str, pidfile: str = "") -> subprocess.CompletedProcess:
    """``twistd -n gatekeeper ARGS`` from this checkout, run to its end."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
               "-n", f"--pidfile={pidfile}", "gatekeeper", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=60)


def output_lines(result: subprocess.CompletedProcess) -> list[str]:
    return (result.stdout + result.stderr).splitlines()


def assert_one_line_about_a_listen_failure(result, needle: str) -> str:
    lines = output_lines(result)
    assert result.returncode != 0, lines
    assert not any("Traceback" in line for line in lines), lines
    about = [line for line in lines if needle in line or "cannot listen" in line]
    assert len(about) == 1, lines
    return about[0]


# -- the real program ---------------------------------------------------------------


def test_a_ras_port_in_use_is_one_line_naming_it_and_exit_1(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        pidfile = tmp_path / "gk.pid"
        result = twistd(tmp_path, "--interface", "127.0.0.1", "--ras-port", str(port),
                        "--discovery-port", "0", "--status-port", "0", pidfile=str(pidfile))
    line = assert_one_line_about_a_listen_failure(result, f":{port}")
    assert result.returncode == 1
    assert f"cannot listen on UDP 127.0.0.1:{port} (RAS): address already in use" in line
    assert "#critical]" in line and "--ras-port" in line
    assert not pidfile.exists()   # twistd still cleaned up after the failed start


def test_a_status_port_in_use_is_one_line_naming_it_and_exit_1(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = twistd(tmp_path, "--interface", "127.0.0.1", "--ras-port", "0",
                        "--discovery-port", "0", "--status-port", str(port))
    line = assert_one_line_about_a_listen_failure(result, f":{port}")
    assert result.returncode == 1
    assert (f"cannot listen on TCP 127.0.0.1:{port} (status port): address already in use"
            in line)
    assert "--status-port" in line


def test_an_interface_address_the_host_lacks_is_one_line_naming_it(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        with pytest.raises(OSError) as raised:      # the premise: the host lacks it
            probe.bind((ABSENT, 0))
    assert raised.value.errno == errno.EADDRNOTAVAIL
    port = free_port()
    result = twistd(tmp_path, "--interface", ABSENT, "--ras-port", str(port),
                    "--discovery-port", "0", "--status-port", "0")
    line = assert_one_line_about_a_listen_failure(result, ABSENT)
    assert result.returncode == 1
    assert (f"cannot listen on UDP {ABSENT}:{port} (RAS): this host has no such address"
            in line)
    assert "--interface" in line


def test_a_bad_configuration_file_is_one_line_without_the_usage_text(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[Gatekeeper::Main]\nTimeToLive=soon\n")
    result = twistd(tmp_path, "--config", str(bad), "--status-port", "0")
    lines = output_lines(result)
    assert result.returncode == 1
    assert lines == [f"gatekeeper: {bad}: [Gatekeeper::Main] TimeToLive=soon: "
                     "not a whole number"]
    assert result.stdout == ""                       # twistd's usage went nowhere
    assert "Usage:" not in result.stderr and "--ras-port" not in result.stderr


def test_a_bad_option_still_gets_twistds_usage(tmp_path):
    result = twistd(tmp_path, "--interface", "not-an-address")
    assert result.returncode == 1
    assert "Usage:" in result.stdout
    assert "--interface 'not-an-address': not an IP address" in result.stdout


def test_version_prints_the_gatekeepers_version_and_twisteds(tmp_path):
    import twisted
    from importlib import metadata

    result = twistd(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [f"gatekeeper {metadata.version('gatekeeper')}",
                                          f"Twisted {twisted.__version__}"]
    assert "Traceback" not in result.stderr


# -- the pieces ---------------------------------------------------------------------


def test_version_falls_back_to_the_package_when_not_installed(monkeypatch):
    from importlib import metadata

    import gatekeeper

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert tap.version() == gatekeeper.__version__


def service() -> GatekeeperService:
    return GatekeeperService(RasSettings(), ListenSettings(interface="127.0.0.1", ras_port=1719,
                                                           discovery_port=0, status_port=7000),
                             Clock())


def refuse(child, port: int, number: int, interface: str = "127.0.0.1"):
    def start():
        raise CannotListenError(interface, port, OSError(number, os.strerror(number)))
    child.privilegedStartService = start


@pytest.mark.parametrize("name, number, interface, text, hint", [
    ("ras", errno.EADDRINUSE, "127.0.0.1",
     "cannot listen on UDP 127.0.0.1:1719 (RAS): address already in use",
     "--ras-port, [Gatekeeper::Main] UnicastRasPort"),
    ("ras", errno.EADDRNOTAVAIL, ABSENT,
     f"cannot listen on UDP {ABSENT}:1719 (RAS): this host has no such address",
     "--interface, [Gatekeeper::Main] Home"),
    ("status", errno.EACCES, "127.0.0.1",
     "cannot listen on TCP 127.0.0.1:7000 (status port): permission denied",
     "--status-port, [Gatekeeper::Main] StatusPort"),
    ("ras", errno.EADDRINUSE, "",
     "cannot listen on UDP *:1719 (RAS): address already in use", "--ras-port"),
])
def test_a_port_that_cannot_be_opened_is_one_listen_error_and_one_critical_line(
        logged, name, number, interface, text, hint):
    gk = service()
    child = gk.getServiceNamed(name)
    refuse(child, child.args[0], number, interface)
    with pytest.raises(ListenError) as raised:
        gk.privilegedStartService()
    assert str(raised.value) == text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    critical = [e for e in logged if e.get("log_level") is not None
                and e["log_level"].name == "critical"]
    assert len(critical) == 1
    assert critical[0]["failure"] == text and hint in critical[0]["hint"]
    if number == errno.EADDRINUSE:   # the usual case fits what a daemon's parent prints
        assert len(f"1 gatekeeper.service.ListenError: {text}") <= 100


def test_a_port_opened_in_startservice_is_named_too(logged):
    gk = service()
    child = gk.getServiceNamed("status")

    def start():
        raise CannotListenError("127.0.0.1", 2222, OSError(errno.EADDRINUSE, "in use"))
    child.startService = start
    gk.getServiceNamed("ras").startService = lambda: None
    with pytest.raises(ListenError, match=r"TCP 127\.0\.0\.1:2222 \(status port\)"):
        gk.startService()


def test_the_excepthook_is_silent_about_listen_errors_only():
    seen = []
    hook = tap._quiet_about(lambda *exc: seen.append(exc[1]))
    hook(ListenError, ListenError("cannot listen ..."), None)
    assert seen == []
    other = RuntimeError("boom")
    hook(RuntimeError, other, None)
    assert seen == [other]


def test_make_service_installs_the_hook_once(monkeypatch):
    original = sys.__excepthook__        # whatever an earlier test installed
    monkeypatch.setattr(sys, "excepthook", original)
    options = tap.Options()
    options.parseOptions(["--status-port", "0", "--discovery-port", "0"])
    tap.makeService(options)
    first = sys.excepthook
    assert first is not original and first.quiet_about_listen_errors
    tap.makeService(options)
    assert sys.excepthook is first


def test_a_bad_file_is_refused_with_one_line_and_status_1(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[Gatekeeper::Main]\nTimeToLive=soon\n")
    with pytest.raises(tap.ConfigRefused) as raised:
        tap.Options().parseOptions(["--config", str(bad)])
    assert isinstance(raised.value, SystemExit)
    assert raised.value.code == (f"gatekeeper: {bad}: [Gatekeeper::Main] TimeToLive=soon: "
                                 "not a whole number")


# -- the discovery socket -------------------------------------------------------------


class MulticastTransport:
    """Records joinGroup; answers with the Deferred it is given."""

    def __init__(self, result: defer.Deferred) -> None:
        self.result = result
        self.joined: list[tuple[str, str]] = []

    def joinGroup(self, group: str, interface: str = "") -> defer.Deferred:
        self.joined.append((group, interface))
        return self.result


def discovery(interface: str) -> DiscoveryProtocol:
    clock = Clock()
    controller = RasController(RasSettings(), EventBus(), clock)
    return DiscoveryProtocol(RasProtocol(controller, clock), interface)


def test_discovery_joins_the_group_on_the_interface_given(logged):
    protocol = discovery("127.0.0.1")
    protocol.transport = MulticastTransport(defer.succeed(None))
    protocol.startProtocol()
    assert protocol.transport.joined == [("224.0.1.41", "127.0.0.1")]
    assert any(e.get("log_format", "").startswith("discovery: joined") for e in logged)


def test_a_join_that_fails_later_is_logged_with_its_reason(logged):
    protocol = discovery(ABSENT)
    pending: defer.Deferred = defer.Deferred()
    protocol.transport = MulticastTransport(pending)
    protocol.startProtocol()
    assert [e for e in logged if "could not join" in e.get("log_format", "")] == []
    pending.errback(MulticastJoinError("224.0.1.41", ABSENT, errno.ENODEV, "No such device"))
    warned = [e for e in logged if "could not join" in e.get("log_format", "")]
    assert len(warned) == 1
    assert warned[0]["reason"] == "No such device" and warned[0]["interface"] == ABSENT
    assert warned[0]["log_level"].name == "warn"
    assert pending.called and pending.result is None   # handled: no "Unhandled error"
