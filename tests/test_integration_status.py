"""The status port of the real program, with the clients users have.

The Perl CDR collector is the status-port reading part of the seed
document's gnugk_cdr.pl (the test starts the gatekeeper itself instead of
``exec``); it runs under real ``perl`` while a call goes through.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from gatekeeper.testing import FakeEndpoint
from gkprocess import GatekeeperProcess, free_port

PERL_CDR_CLIENT = r"""
use strict;
use IO::Socket;
use IO::Handle;
my ($gk_port, $logfile) = @ARGV;
my $gk_host = "localhost";
my $sock = IO::Socket::INET->new(PeerAddr => $gk_host, PeerPort => $gk_port, Proto => 'tcp');
if (!defined $sock) { die "Can't connect to gatekeeper at $gk_host:$gk_port"; }
open (CDRFILE, ">>$logfile");
CDRFILE->autoflush(1); # don't buffer output
while (!$sock->eof()) {
    my $msg = $sock->getline();
    $msg = (split(/;/, $msg))[0]; # remove junk at end of line
    my $msgtype = (split(/\|/, $msg))[0];
    if ($msgtype eq "CDR") {
        print CDRFILE "$msg\n";
    }
}
close (CDRFILE);
"""


class UdpEndpoint:
    """A FakeEndpoint on a real UDP socket."""

    def __init__(self, ras_port: int, aliases: list[str], signal_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.gk = ("127.0.0.1", ras_port)
        self.fake = FakeEndpoint(aliases, ("127.0.0.1", signal_port), self.sock.getsockname())

    def ask(self, data: bytes):
        self.sock.sendto(data, self.gk)
        answer, _ = self.sock.recvfrom(65535)
        return self.fake.read(answer)

    def close(self) -> None:
        self.sock.close()


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(shutil.which("perl") is None,
                    reason="perl not installed: this test runs the seed's Perl status client")
def test_perl_cdr_collector_logs_the_cdr_of_a_call(tmp_path):
    ras_port, status_port = free_port(), free_port(socket.SOCK_STREAM)
    script = tmp_path / "gnugk_cdr.pl"
    script.write_text(PERL_CDR_CLIENT)
    logfile = tmp_path / "perl-cdr.log"   # not the gatekeeper's own cdr.log
    with GatekeeperProcess(tmp_path, "--name", "PerlGK", "--interface", "127.0.0.1",
                           "--ras-port", str(ras_port), "--discovery-port", "0",
                           "--status-port", str(status_port)):
        perl = subprocess.Popen(["perl", str(script), str(status_port), str(logfile)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        alice = UdpEndpoint(ras_port, ["1001", "alice"], 1720)
        bob = UdpEndpoint(ras_port, ["1002", "bob"], 1721)
        try:
            time.sleep(0.5)   # let perl connect before the call
            assert alice.ask(alice.fake.rrq()).kind == "registrationConfirm"
            assert bob.ask(bob.fake.rrq()).kind == "registrationConfirm"
            ids = (alice.fake.endpoint_id, bob.fake.endpoint_id)
            assert alice.ask(alice.fake.arq(["bob"])).kind == "admissionConfirm"
            call_id = list(alice.fake.calls)[0]
            assert bob.ask(bob.fake.arq(answer_call=True, call_id=call_id)).kind == "admissionConfirm"
            time.sleep(1.1)
            assert alice.ask(alice.fake.drq(call_id)).kind == "disengageConfirm"
            assert bob.ask(bob.fake.drq(call_id)).kind == "disengageConfirm"
            assert wait_for(lambda: logfile.exists() and "CDR|" in logfile.read_text())
        finally:
            alice.close()
            bob.close()
            perl.terminate()
            perl.wait(10)
    lines = logfile.read_text().splitlines()
    assert len(lines) == 1, lines
    fields = lines[0].split("|")
    assert fields[0] == "CDR" and fields[1] == "1"
    assert fields[2] == " ".join(f"{b:02x}" for b in call_id)
    assert int(fields[3]) >= 1                          # seconds connected
    assert fields[6] == "127.0.0.1:1720" and fields[8] == "127.0.0.1:1721"
    assert (fields[7], fields[9]) == ids                 # caller's and callee's endpoint ids
    assert fields[10] == "bob:h323_ID" and fields[11] == "1001:dialedDigits=alice:h323_ID"
    assert fields[12] == "PerlGK"
    assert len(fields) == 13


@pytest.mark.skipif(shutil.which("telnet") is None,
                    reason="telnet not installed: this test drives the Debian telnet client")
def test_real_telnet_client_logs_in_and_runs_help_and_r(tmp_path):
    import os
    import pty
    import select

    from gatekeeper.status.auth import hash_password

    status_port, ras_port = free_port(socket.SOCK_STREAM), free_port()
    config = tmp_path / "gk.ini"
    config.write_text("[GkStatus::Auth]\nrule=password\n"
                      f"gkadmin={hash_password('secret')}\n")
    with GatekeeperProcess(tmp_path, "--config", str(config), "--name", "TelnetGK",
                           "--interface", "127.0.0.1", "--ras-port", str(ras_port),
                           "--discovery-port", "0", "--status-port", str(status_port)):
        endpoint = UdpEndpoint(ras_port, ["800:dialedDigits", "Wei"], 1720)
        try:
            assert endpoint.ask(endpoint.fake.rrq()).kind == "registrationConfirm"
        finally:
            endpoint.close()
        pid, fd = pty.fork()
        if pid == 0:   # the child becomes telnet
            os.execvp("telnet", ["telnet", "127.0.0.1", str(status_port)])
        output = b""

        def read_until(marker: bytes, timeout: float = 10.0) -> bytes:
            nonlocal output
            deadline = time.monotonic() + timeout
            while marker not in output and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        output += os.read(fd, 65536)
                    except OSError:
                        break
            return output

        try:
            assert b"TelnetGK login: " in read_until(b"login: ")
            os.write(fd, b"gkadmin\r")
            assert b"Password: " in read_until(b"Password: ")
            os.write(fd, b"secret\r")
            assert b"Version:" in read_until(b"Running:")
            os.write(fd, b"help\r")
            assert b"printallregistrations" in read_until(b"yell")
            os.write(fd, b"r\r")
            text = read_until(b"Number of Endpoints: 1")
            assert b"RCF|127.0.0.1:1720|800:dialedDigits=Wei:h323_ID|terminal|" in text
            assert b"secret" not in text   # the password was not echoed
            os.write(fd, b"exit\r")
            read_until(b"Connection closed", 5)
        finally:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
            os.waitpid(pid, 0)
            os.close(fd)


def test_shutdown_command_and_sigterm_stop_the_real_program_cleanly(tmp_path):
    status_port = free_port(socket.SOCK_STREAM)
    process = GatekeeperProcess(tmp_path, "--interface", "127.0.0.1", "--ras-port",
                                str(free_port()), "--discovery-port", "0",
                                "--status-port", str(status_port)).start()
    try:
        with socket.create_connection(("127.0.0.1", status_port), timeout=5) as client:
            client.recv(65536)
            client.sendall(b"shutdown\r\n")
            assert process.process.wait(15) == 0
    finally:
        process.stop()
    again = GatekeeperProcess(tmp_path, "--interface", "127.0.0.1", "--ras-port",
                              str(free_port()), "--discovery-port", "0", "--status-port", "0")
    again.start()
    assert again.stop() == 0          # SIGTERM
    assert "Server Shut Down" in again.log()
