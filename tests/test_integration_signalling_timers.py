"""[RoutedMode] timers on the real ``twistd -n gatekeeper --routed`` (issue 11):
a call signalling connection that sends no Setup is dropped after
SetupTimeout, a bad TPKT is answered and the connection closed while another
stays, and a reload (SIGHUP, and the status port's Reload) gives new
connections the new SetupTimeout.  Real sockets on 127.0.0.1.
"""

from __future__ import annotations

import signal
import socket
import time

from gkprocess import GatekeeperProcess, StatusSession, free_port


def start(tmp_path, setup_timeout_ms: int) -> tuple[GatekeeperProcess, int, int]:
    (tmp_path / "gatekeeper.ini").write_text(
        f"[RoutedMode]\nGKRouted=1\nSetupTimeout={setup_timeout_ms}\n")
    signal_port, status_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    gk = GatekeeperProcess(tmp_path, "--config", str(tmp_path / "gatekeeper.ini"),
                           "--interface", "127.0.0.1", "--ras-port", str(free_port()),
                           "--discovery-port", "0", "--status-port", str(status_port),
                           "--call-signal-port", str(signal_port))
    gk.start()
    return gk, signal_port, status_port


def silent_for(port: int, limit: float = 10.0) -> float:
    """Connect, send nothing: the seconds until the gatekeeper closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        began = time.monotonic()
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"", data
        return time.monotonic() - began


def test_connection_without_setup_is_dropped_after_setup_timeout(tmp_path):
    gk, port, _ = start(tmp_path, 1000)
    try:
        waited = silent_for(port)
        assert 0.8 <= waited <= 3.0, waited
    finally:
        gk.stop()


def test_reload_gives_new_connections_the_new_setup_timeout(tmp_path):
    gk, port, status_port = start(tmp_path, 1000)
    try:
        assert silent_for(port) <= 3.0
        (tmp_path / "gatekeeper.ini").write_text(
            "[RoutedMode]\nGKRouted=1\nSetupTimeout=4000\n")
        gk.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in gk.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        waited = silent_for(port)
        assert 3.5 <= waited <= 7.0, waited
        # and back by the status port's Reload
        (tmp_path / "gatekeeper.ini").write_text(
            "[RoutedMode]\nGKRouted=1\nSetupTimeout=1000\n")
        session = StatusSession(status_port, trace=1)
        try:
            session.sock.sendall(b"Reload\r\n")
            session.wait_for("Full Config reloaded.")
        finally:
            session.close()
        assert silent_for(port) <= 3.0
    finally:
        gk.stop()


def test_bad_tpkt_is_released_and_closed_while_another_connection_stays(tmp_path):
    gk, port, _ = start(tmp_path, 5000)
    try:
        quiet = socket.create_connection(("127.0.0.1", port), timeout=10)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as bad:
            bad.sendall(b"\x07\x00\x00\x05x")             # not TPKT version 3
            data = b""
            while True:
                chunk = bad.recv(4096)
                if not chunk:
                    break
                data += chunk
        # no call reference yet, so nothing to release: the connection is closed
        assert data == b""
        assert "bad tpkt" in gk.log().lower() or "malformed" in gk.log().lower(), gk.log()
        # the other connection is still open (its Setup timer has not run out)
        quiet.setblocking(False)
        try:
            still_open = quiet.recv(1) != b""
        except BlockingIOError:
            still_open = True
        assert still_open
        quiet.close()
        assert gk.process.poll() is None
    finally:
        gk.stop()
