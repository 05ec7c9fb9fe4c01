"""Reloading the configuration: by the status Reload command and by SIGHUP."""

from __future__ import annotations

import os
import signal
import socket
import time

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper import tap
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint
from gkprocess import GatekeeperProcess, free_port

FIRST = "[Gatekeeper::Main]\nName=ReloadGK\n[RasSrv::GWPrefixes]\nGW1=02\n"
SECOND = FIRST.replace("GW1=02", "GW1=02,07") + "[RasSrv::PermanentEndpoints]\n10.9.9.9=perm\n"
BROKEN = FIRST + "[Gatekeeper::Main]\nTimeToLive=soon\n"


def make(path):
    options = tap.Options()
    options.parseOptions(["--config", str(path), "--status-port", "0"])
    clock = Clock()
    clock.advance(1_800_000_000)
    service = tap.makeService(options)
    service.clock = clock
    service.controller.clock = clock
    service.ras_protocol.clock = clock
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    service.add_permanent_endpoints()   # what startService does
    return service


def session(service):
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 4000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
    client = service.status.buildProtocol(None)
    client.makeConnection(transport)
    transport.clear()
    return client, transport


def ask(service, endpoint, data):
    service.ras_protocol.datagramReceived(data, endpoint.ras_address)
    return endpoint.read(service.ras_protocol.transport.take()[0][0])


def test_reload_command_swaps_the_file_in_and_says_so(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    service = make(path)
    gateway = FakeEndpoint(["GW1"], ("10.0.0.9", 1720), ("10.0.0.9", 1719), endpoint_type="gateway")
    caller = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    ask(service, gateway, gateway.rrq())
    ask(service, caller, caller.rrq())
    assert ask(service, caller, caller.arq(["0712345:dialedDigits"])).kind == "admissionReject"
    client, transport = session(service)
    path.write_text(SECOND)
    client.dataReceived(b"reload\r\n")
    assert transport.value() == b"Full Config reloaded.\r\n"
    assert ask(service, caller, caller.arq(["0712345:dialedDigits"])).kind == "admissionConfirm"
    assert service.registry.find_alias("perm").permanent
    assert len(service.registry) == 3          # registrations survive a reload
    assert len(service.calls) == 1


def test_a_broken_file_keeps_the_running_configuration(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(SECOND)
    service = make(path)
    client, transport = session(service)
    path.write_text(BROKEN)
    client.dataReceived(b"reload\r\n")
    reply = transport.value().decode()
    assert reply.startswith("Reload failed: ") and "TimeToLive=soon" in reply
    assert service.registry.configured_prefixes == {"GW1": ("02", "07")}
    assert service.registry.find_alias("perm") is not None
    assert service.settings.gatekeeper_id == "ReloadGK"


def test_a_sighup_reload_is_not_announced(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    service = make(path)
    client, transport = session(service)
    path.write_text(SECOND)
    ok, _ = service.reload("signal")
    assert ok and transport.value() == b""
    assert service.registry.configured_prefixes == {"GW1": ("02", "07")}


def test_reload_warnings_reach_every_session_at_level_0(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    service = make(path)
    client, transport = session(service)
    client.dataReceived(b"trace 0\r\n")
    transport.clear()
    path.write_text(FIRST + "[SomeGnuGkSection]\nX=1\n")
    service.reload("signal")
    service.status.flush()
    assert transport.value() == (f"Warning: {path}: [SomeGnuGkSection]: section not supported, "
                                 "ignored\r\n").encode()
    transport.clear()
    client.dataReceived(b"reload\r\n")
    assert transport.value().endswith(b"ignored\r\nFull Config reloaded.\r\n")


def test_sighup_to_the_real_process_reloads_and_a_broken_file_is_refused(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    ras_port = free_port()
    process = GatekeeperProcess(tmp_path, "--config", str(path), "--interface", "127.0.0.1",
                                "--ras-port", str(ras_port), "--discovery-port", "0",
                                "--status-port", "0")
    with process:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        gw_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gw_sock.bind(("127.0.0.1", 0))
        gw_sock.settimeout(5)
        try:
            caller = FakeEndpoint(["alice"], ("127.0.0.1", 1720), sock.getsockname())
            gateway = FakeEndpoint(["GW1"], ("127.0.0.1", 1721), gw_sock.getsockname(),
                                   endpoint_type="gateway")

            def ask_real(endpoint, s, data):
                s.sendto(data, ("127.0.0.1", ras_port))
                return endpoint.read(s.recvfrom(65535)[0])

            assert ask_real(gateway, gw_sock, gateway.rrq()).kind == "registrationConfirm"
            assert ask_real(caller, sock, caller.rrq()).kind == "registrationConfirm"
            assert ask_real(caller, sock, caller.arq(["0755:dialedDigits"])).kind == "admissionReject"
            path.write_text(SECOND)
            os.kill(process.process.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "configuration reloaded" not in process.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ask_real(caller, sock, caller.arq(["0755:dialedDigits"])).kind == "admissionConfirm"
            path.write_text(BROKEN)
            os.kill(process.process.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "reload refused" not in process.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "TimeToLive=soon" in process.log()
            # still the second configuration, still serving
            assert ask_real(caller, sock, caller.arq(["0799:dialedDigits"])).kind == "admissionConfirm"
            first, second = list(caller.calls)[-2:]   # the first ARQ was rejected
            assert ask_real(caller, sock, caller.drq(first)).kind == "disengageConfirm"
            # SIGTERM: exit 0, and the call still up gets its CDR too.
            assert process.stop() == 0
        finally:
            sock.close()
            gw_sock.close()
    cdrs = (tmp_path / "cdr.log").read_text().splitlines()
    assert [line.split("|")[2] for line in cdrs] == [
        " ".join(f"{b:02x}" for b in call_id) for call_id in (first, second)]
    assert all(line.startswith("CDR|") and line.endswith("|ReloadGK;") for line in cdrs)
