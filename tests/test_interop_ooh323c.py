"""Interop with a real, independent H.323 endpoint: ooh323c's ``chansetup``.

The real program (``twistd -n gatekeeper``, direct mode) runs on 127.0.0.1;
ooh323c endpoints register with it (GRQ/RRQ), call each other through it
(ARQ, then Q.931 Setup straight to the callee with fastStart and tunnelled
H.245, the callee's answerCall ARQ, DRQ from both sides) and leave (URQ).
In routed mode (``--routed``) the same endpoints call each other through the
gatekeeper's call signalling port, and DisconnectCall releases them both.
What the gatekeeper did is read back from its status port, the way GnuGk's
tools read it, and from its ``cdr.log``; what the endpoints saw is read from
their standard output and their trace logs (``h323peer_<pid>``).

The binary: ``$OOH323C_BIN``, or built (and cached) by
``../shared/peers/ooh323c/build.sh`` of the project when that script exists.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gkprocess import ROOT, GatekeeperProcess, StatusSession, free_port

BUILD_SCRIPT = ROOT.parent / "shared" / "peers" / "ooh323c" / "build.sh"
GK_NAME = "InteropGK"


def _find_chansetup() -> str:
    """The chansetup binary to run, or a skip saying how to get one."""
    given = os.environ.get("OOH323C_BIN")
    if given:
        if not os.access(given, os.X_OK):
            pytest.fail(f"OOH323C_BIN={given} is not an executable file")
        return given
    if not BUILD_SCRIPT.is_file():
        pytest.skip("ooh323c's chansetup not available: set OOH323C_BIN to it, or build it with "
                    "bash ../shared/peers/ooh323c/build.sh (needs build-essential cmake patch)")
    try:
        built = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                               timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip(f"building ooh323c with {BUILD_SCRIPT} took over 10 minutes")
    found = re.search(r"^export OOH323C_BIN=(.+)$", built.stdout, re.M)
    if built.returncode != 0 or found is None:
        pytest.skip(f"could not build ooh323c with {BUILD_SCRIPT} (needs build-essential cmake "
                    f"patch), or set OOH323C_BIN:\n{built.stderr[-2000:]}")
    return found.group(1).strip()


@pytest.fixture(scope="module")
def chansetup() -> str:
    return _find_chansetup()


class Endpoint:
    """One chansetup process in ``workdir``; its stdout goes to NAME.out."""

    def __init__(self, binary: str, workdir: Path, name: str, ras_port: int, *args: str,
                 h323id: str, number: str, signal_port: int | None = None) -> None:
        self.name = name
        self.signal_port = signal_port or free_port(socket.SOCK_STREAM)
        self.out_path = workdir / f"{name}.out"
        self.workdir = workdir
        # Line-buffered stdout (coreutils' stdbuf), so that what it printed is
        # there while it runs.
        command = ["stdbuf", "-oL", binary, "--use-ip", "127.0.0.1", "--use-port", str(self.signal_port),
                   "--gk", f"127.0.0.1:{ras_port}", "--h323id", h323id, "--user-number", number,
                   *args]
        with open(self.out_path, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "OO_ALLOW_LOOPBACK": "1"})

    @property
    def signal_address(self) -> str:
        return f"127.0.0.1:{self.signal_port}"

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def trace_log(self) -> str:
        """ooh323c's own trace file, named after the process id."""
        path = self.workdir / f"h323peer_{self.process.pid}"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_output(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output()
            if text in output:
                return output
            if self.process.poll() is not None:
                output = self.output()
                if text in output:
                    return output
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not print {text!r} within {timeout} s:\n"
                             f"{self.output()}\n--- trace ---\n{self.trace_log()[-3000:]}")

    def wait_exit(self, timeout: float = 10.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout} s:\n"
                                 f"{self.output()}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def lab(tmp_path, chansetup):
    """The gatekeeper, a status session for events (trace 2) and one for
    commands (trace 0), and a way to start endpoints; all stopped at the end."""
    yield from _lab(tmp_path, chansetup, "--direct")


@pytest.fixture
def routed_lab(tmp_path, chansetup):
    """The same in gatekeeper-routed mode: call signalling through the gatekeeper."""
    signal_port = free_port(socket.SOCK_STREAM)
    yield from _lab(tmp_path, chansetup, "--routed", "--call-signal-port", str(signal_port),
                    signal_port=signal_port)


def _lab(tmp_path, chansetup, *mode: str, signal_port: int | None = None):
    ras_port, status_port = free_port(), free_port(socket.SOCK_STREAM)
    gatekeeper = GatekeeperProcess(tmp_path, "--name", GK_NAME, "--interface", "127.0.0.1",
                                   "--ras-port", str(ras_port), "--discovery-port", "0",
                                   "--status-port", str(status_port), *mode)
    gatekeeper.start()
    lab = Lab(tmp_path, chansetup, ras_port, gatekeeper)
    lab.signal_address = f"127.0.0.1:{signal_port}" if signal_port else None
    try:
        lab.events = StatusSession(status_port, trace=2)
        lab.commands = StatusSession(status_port, trace=0)
        yield lab
    finally:
        for endpoint in lab.endpoints:
            endpoint.kill()
        for session in (lab.events, lab.commands):
            if session is not None:
                session.close()
        gatekeeper.stop()


class Lab:
    def __init__(self, workdir: Path, binary: str, ras_port: int,
                 gatekeeper: GatekeeperProcess) -> None:
        self.workdir = workdir
        self.binary = binary
        self.ras_port = ras_port
        self.gatekeeper = gatekeeper
        self.endpoints: list[Endpoint] = []
        self.events: StatusSession | None = None
        self.commands: StatusSession | None = None
        self.signal_address: str | None = None   # the gatekeeper's, in routed mode

    def start(self, name: str, *args: str, h323id: str, number: str,
              signal_port: int | None = None) -> Endpoint:
        endpoint = Endpoint(self.binary, self.workdir, name, self.ras_port, *args,
                            h323id=h323id, number=number, signal_port=signal_port)
        self.endpoints.append(endpoint)
        return endpoint

    def bob(self, exit_after: int = 8, name: str = "bob") -> Endpoint:
        """The callee: listens, h323id bob, number 2002."""
        return self.start(name, "--listen", "-exit-after", str(exit_after), h323id="bob",
                          number="2002")

    def alice(self, *args: str, name: str = "alice", signal_port: int | None = None) -> Endpoint:
        """The caller: h323id alice, number 1001."""
        return self.start(name, *args, h323id="alice", number="1001", signal_port=signal_port)

    def registered(self, endpoint: Endpoint, nth: int = 1, timeout: float = 10.0) -> str:
        """Wait for the ``nth`` RCF line for ``endpoint``'s address; its endpoint id."""
        lines = self.events.wait_for_lines(f"RCF|{endpoint.signal_address}|", nth, timeout)
        return lines[nth - 1].rstrip(";").split("|")[4]

    def registrations(self) -> list[str]:
        return [line for line in self.commands.command("r") if line.startswith("RCF|")]

    def cdr_lines(self) -> list[str]:
        path = self.workdir / "cdr.log"
        return path.read_text().splitlines() if path.exists() else []


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ---------------------------------------------------------------------------


def test_ooh323c_endpoints_register_are_listed_and_leave_with_urq(lab):
    bob = lab.bob(exit_after=3)
    alice = lab.alice("--listen", "-exit-after", "3")   # listening: it calls nobody
    bob_id, alice_id = lab.registered(bob), lab.registered(alice)
    assert bob_id != alice_id
    # Each GRQ was confirmed with our name, before its RRQ.
    gcf = [line for line in lab.events.seen if line.startswith("GCF|")]
    assert "GCF|127.0.0.1|2002=bob|terminal;" in gcf
    assert "GCF|127.0.0.1|1001=alice|terminal;" in gcf
    # The RCF lines name the call signal address chansetup listens on, and
    # both aliases it registered: its user number and its h323id.
    rcf = {line.split("|")[1]: line for line in lab.events.seen if line.startswith("RCF|")}
    assert rcf[bob.signal_address] == (
        f"RCF|{bob.signal_address}|2002:dialedDigits=bob:h323_ID|terminal|{bob_id};")
    assert rcf[alice.signal_address] == (
        f"RCF|{alice.signal_address}|1001:dialedDigits=alice:h323_ID|terminal|{alice_id};")
    listed = lab.registrations()       # the same lines, without the event's ";"
    assert sorted(listed) == sorted(line.rstrip(";") for line in rcf.values())
    assert "Number of Endpoints: 2" in lab.commands.command("r")
    assert "registered with gatekeeper" in bob.wait_for_output("onRegistrationConfirm")
    alice.wait_for_output("onRegistrationConfirm")

    # -exit-after: each sends URQ on its way out, and is confirmed.
    assert bob.wait_exit() == 0 and alice.wait_exit() == 0
    ucf = set(lab.events.wait_for_lines("UCF|", 2))
    assert ucf == {f"UCF|127.0.0.1|{bob_id};", f"UCF|127.0.0.1|{alice_id};"}
    assert "Unregistration Request message sent" in bob.trace_log()
    assert lab.registrations() == []
    assert "Number of Endpoints: 0" in lab.commands.command("r")


@pytest.mark.parametrize("dialled, destination_alias", [
    ("2002", "2002:dialedDigits"),
    ("bob", "bob:h323_ID"),
], ids=["by-number", "by-h323id"])
def test_direct_call_between_ooh323c_endpoints(lab, dialled, destination_alias):
    bob = lab.bob(exit_after=10)
    bob_id = lab.registered(bob)
    alice = lab.alice("-duration", "2", "-exit-after", "10", dialled)
    alice_id = lab.registered(alice)

    # The caller's ARQ, then the callee's answerCall ARQ: both confirmed,
    # direct (the ACF sends alice straight to bob's signalling address).
    caller_acf = lab.events.wait_for("ACF|", contains="|false|")
    fields = caller_acf.rstrip(";").split("|")
    assert fields[1:3] == [alice.signal_address, alice_id]
    assert fields[4] == destination_alias
    assert fields[5] == "1001:dialedDigits=alice:h323_ID"
    assert fields[8] == "Direct"
    call_id = fields[7]
    callee_acf = lab.events.wait_for("ACF|", contains="|true|")
    fields = callee_acf.rstrip(";").split("|")
    assert fields[1:3] == [bob.signal_address, bob_id]
    assert fields[7] == call_id and fields[8] == "Direct"

    # The Setup reached bob at the address the ACF gave (alice knew only
    # what it dialled), and the call was answered.
    assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
    alice.wait_for_output("onCallEstablished")
    assert f"connect to remote endpoint({bob.signal_address})" in alice.trace_log()
    # While it is up, the call is listed with both legs.
    listing = lab.commands.command("c")
    assert any(line.startswith("Call No. 1 | CallID ") for line in listing), listing
    assert (f"ACF|{alice.signal_address}|{alice_id}|" in "\n".join(listing)
            and f"ACF|{bob.signal_address}|{bob_id}|" in "\n".join(listing)), listing
    assert listing[-1].startswith("Number of Calls: 1 ")

    # alice hangs up after 2 s; both send DRQ, the call ends with a CDR.
    dcf = set(lab.events.wait_for_lines("DCF|", 2, timeout=15))
    assert {line.split("|")[2] for line in dcf} == {alice_id, bob_id}
    assert all(line.endswith(f"|{call_id};") for line in dcf)
    cdr_event = lab.events.wait_for("CDR|")
    assert "OO_REASON_LOCAL_CLEARED" in alice.wait_for_output("onCallCleared")
    assert "OO_REASON_REMOTE_CLEARED" in bob.wait_for_output("onCallCleared")
    assert alice.wait_exit() == 0                   # its one call is done
    assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")

    assert wait_until(lambda: len(lab.cdr_lines()) == 1), lab.cdr_lines()
    [cdr] = lab.cdr_lines()
    assert cdr == cdr_event
    fields = cdr.rstrip(";").split("|")
    assert fields[0:2] == ["CDR", "1"]
    assert fields[2] == call_id.replace("-", " ")
    assert 1 <= int(fields[3]) <= 5                # seconds connected: chansetup's -duration 2
    assert fields[6:10] == [alice.signal_address, alice_id, bob.signal_address, bob_id]
    assert fields[10] == destination_alias
    assert fields[11] == "1001:dialedDigits=alice:h323_ID"
    assert fields[12] == GK_NAME


def test_call_to_an_unknown_number_is_rejected_and_ooh323c_clears_it(lab):
    alice = lab.alice("-duration", "2", "-exit-after", "8", "9999")
    lab.registered(alice)
    arj = lab.events.wait_for("ARJ|")
    fields = arj.rstrip(";").split("|")
    assert fields[1:6] == [alice.signal_address, "9999:dialedDigits",
                           "1001:dialedDigits=alice:h323_ID", "false", "calledPartyNotRegistered"]
    assert "OO_REASON_GK_NOCALLEDUSER" in alice.wait_for_output("onCallCleared")
    assert "onCallEstablished" not in alice.output()
    assert alice.wait_exit() == 0
    assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")
    assert lab.cdr_lines() == []


def test_endpoints_restarted_on_the_same_ports_are_served_afresh(lab):
    # ooh323c numbers its RAS requests from 1 and takes the first free RAS
    # port, so a restarted endpoint sends the very same GRQ/RRQ again, and an
    # ARQ under an old sequence number: none of that is a retransmission.
    bob = lab.bob(exit_after=10)
    bob_id = lab.registered(bob)
    first = lab.alice("-duration", "1", "-exit-after", "8", "2002", name="alice-1")
    first_id = lab.registered(first)
    first.wait_for_output("onCallCleared")
    assert first.wait_exit() == 0
    assert lab.events.wait_for("UCF|", contains=first_id)
    second = lab.alice("-duration", "1", "-exit-after", "8", "9999", name="alice-2",
                       signal_port=first.signal_port)
    second_id = lab.registered(second, nth=2)
    assert second_id not in (first_id, bob_id)
    assert lab.events.wait_for("ARJ|", contains="calledPartyNotRegistered")
    assert "OO_REASON_GK_NOCALLEDUSER" in second.wait_for_output("onCallCleared")
    assert "onCallEstablished" not in second.output()
    assert len(lab.cdr_lines()) == 1



# --- gatekeeper-routed mode -------------------------------------------------


def _routed_cdr_after_clearing(lab, alice: Endpoint, bob: Endpoint, call_id: str) -> list[str]:
    """alice (talking 2 s) clears the call with bob: both report it, the one
    CDR in cdr.log is the CDR event line, for ``call_id``, connected (the
    connect time is the Connect the gatekeeper relayed); its fields."""
    cdr_event = lab.events.wait_for("CDR|", timeout=15)
    assert "OO_REASON_LOCAL_CLEARED" in alice.wait_for_output("onCallCleared")
    assert "OO_REASON_REMOTE_CLEARED" in bob.wait_for_output("onCallCleared")
    assert alice.wait_exit() == 0
    assert wait_until(lambda: len(lab.cdr_lines()) == 1), lab.cdr_lines()
    [cdr] = lab.cdr_lines()
    assert cdr == cdr_event
    fields = cdr.rstrip(";").split("|")
    assert fields[2] == call_id.replace("-", " ")
    assert 1 <= int(fields[3]) <= 5                 # 2 s of talk
    assert fields[4] != "unconnected"
    return fields


def test_routed_call_between_ooh323c_endpoints_passes_through_the_gatekeeper(routed_lab):
    lab = routed_lab
    bob = lab.bob(exit_after=10)
    bob_id = lab.registered(bob)
    alice = lab.alice("-duration", "2", "-exit-after", "10", "2002")
    alice_id = lab.registered(alice)

    caller_acf = lab.events.wait_for("ACF|", contains="|false|")
    fields = caller_acf.rstrip(";").split("|")
    assert fields[1:3] == [alice.signal_address, alice_id]
    call_id = fields[7]
    assert fields[8] != "Direct"
    callee_acf = lab.events.wait_for("ACF|", contains="|true|")
    assert callee_acf.rstrip(";").split("|")[7] == call_id

    assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
    alice.wait_for_output("onCallEstablished")
    # alice's Setup went to the gatekeeper, never to bob: the ACF named the
    # gatekeeper's call signalling address, and bob was called from it.
    assert f"connect to remote endpoint({lab.signal_address})" in alice.trace_log()
    assert f"connect to remote endpoint({bob.signal_address})" not in alice.trace_log()
    listing = lab.commands.command("c")
    assert listing[-1].startswith("Number of Calls: 1 "), listing
    assert listing[-1].endswith(" Proxied: 1"), listing     # counted as routed
    assert any(line.startswith("Current Calls: 1 ") and line.endswith("Proxied: 1")
               for line in lab.commands.command("s")), "statistics count it as proxied"

    fields = _routed_cdr_after_clearing(lab, alice, bob, call_id)
    assert fields[6:10] == [alice.signal_address, alice_id, bob.signal_address, bob_id]
    # Only one CDR although both endpoints also sent DRQ after ReleaseComplete.
    time.sleep(0.5)
    assert len(lab.cdr_lines()) == 1
    assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")


def test_disconnect_call_on_a_routed_call_releases_both_ooh323c_endpoints(routed_lab):
    lab = routed_lab
    bob = lab.bob(exit_after=14)
    lab.registered(bob)
    alice = lab.alice("-duration", "10", "-exit-after", "14", "2002")
    lab.registered(alice)
    bob.wait_for_output("onCallEstablished")
    alice.wait_for_output("onCallEstablished")
    listing = lab.commands.command("c")
    assert listing[-1].startswith("Number of Calls: 1 "), listing
    lab.commands.sock.sendall(b"DisconnectCall 1\r\n")
    # Long before alice's 10 s: the gatekeeper sent ReleaseComplete to both.
    assert "OO_REASON_REMOTE_CLEARED" in alice.wait_for_output("onCallCleared", timeout=5)
    assert "OO_REASON_REMOTE_CLEARED" in bob.wait_for_output("onCallCleared", timeout=5)
    assert wait_until(lambda: len(lab.cdr_lines()) == 1), lab.cdr_lines()
    assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")


def test_transfer_call_moves_an_ooh323c_caller_to_a_third_endpoint(routed_lab):
    """TransferCall alice 3003: alice (ooh323c) gets Facility callForwarded
    through the gatekeeper, releases her call with bob and calls carol, again
    through the gatekeeper (ARQ, routed Setup)."""
    lab = routed_lab
    bob = lab.bob(exit_after=20)
    lab.registered(bob)
    carol = lab.start("carol", "--listen", "-exit-after", "20", h323id="carol", number="3003")
    carol_id = lab.registered(carol)
    alice = lab.alice("-duration", "12", "-exit-after", "20", "2002")
    alice_id = lab.registered(alice)
    bob.wait_for_output("onCallEstablished")
    alice.wait_for_output("onCallEstablished")
    lab.commands.sock.sendall(b"TransferCall alice 3003\r\n")
    reply = lab.commands.read_until(lambda line: line.startswith(("Transferring", "Error")))[-1]
    assert reply == "Transferring call number 1: the caller is asked to call 3003", reply
    # bob is released through the gatekeeper; carol is called by alice
    # alice released with reason facilityCallDeflection, relayed to bob as it was
    assert "OO_REASON_REMOTE_FWDED" in bob.wait_for_output("onCallCleared", timeout=8)
    assert "onIncomingCall" in carol.wait_for_output("onCallEstablished", timeout=10)
    acfs = lab.events.wait_for_lines("ACF|", 4, timeout=10)       # 2 per call
    second = [line for line in acfs[2:] if "|false|" in line]
    assert second and second[0].rstrip(";").split("|")[1:3] == [alice.signal_address, alice_id]
    assert "Call Forward Facility message received" in alice.trace_log()
    # the first call ended once, with its CDR; the new one is up, routed
    assert wait_until(lambda: len(lab.cdr_lines()) >= 1), lab.cdr_lines()
    listing = lab.commands.command("c")
    assert listing[-1].startswith("Number of Calls: 1 ") and listing[-1].endswith(" Proxied: 1"), \
        listing
    assert any(carol_id in line for line in listing), listing


def test_generated_call_proceeding_with_ooh323c(tmp_path, chansetup):
    """[RoutedMode] GenerateCallProceeding=1: alice's Setup is answered by the
    gatekeeper's CallProceeding; bob's own never reaches her as a second one,
    and the call (fastStart, tunnelled H.245) is set up and cleared as usual."""
    config = tmp_path / "gatekeeper.ini"
    config.write_text("[RoutedMode]\nGenerateCallProceeding=1\n")
    signal_port = free_port(socket.SOCK_STREAM)
    labs = _lab(tmp_path, chansetup, "--config", str(config), "--routed", "--call-signal-port",
                str(signal_port), signal_port=signal_port)
    lab = next(labs)
    try:
        bob = lab.bob(exit_after=10)
        lab.registered(bob)
        alice = lab.alice("-duration", "2", "-exit-after", "10", "2002")
        lab.registered(alice)
        assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
        alice.wait_for_output("onCallEstablished")
        assert "OO_REASON_LOCAL_CLEARED" in alice.wait_for_output("onCallCleared", timeout=10)
        # bob sends his own CallProceeding after his answerCall ARQ; alice got
        # exactly one, no later than bob sent his: the gatekeeper's, sent as
        # her Setup arrived (bob's was absorbed). She then tunnelled H.245.
        sent = _trace_time(bob.trace_log(), "Sent Message - CallProceeding")
        received = _trace_time(alice.trace_log(), "H.225 Call Proceeding message received")
        assert alice.trace_log().count("H.225 Call Proceeding message received") == 1
        assert received <= sent, (received, sent)
        assert "Sent Message - Facility(OOTerminalCapabilitySet)" in alice.trace_log()
        assert wait_until(lambda: len(lab.cdr_lines()) == 1), lab.cdr_lines()
        assert lab.cdr_lines()[0].split("|")[4] != "unconnected"
    finally:
        next(labs, None)


def _trace_time(log: str, text: str) -> float:
    """Seconds of the day of the first ooh323c trace line containing ``text``
    (its lines start ``HH:MM:SS:mmm``)."""
    line = next(line for line in log.splitlines() if text in line)
    hours, minutes, seconds, millis = (int(part) for part in line.split()[0].split(":"))
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


# --- a caller that is not registered (AcceptUnregisteredCalls) ----------------


class UnregisteredEndpoint(Endpoint):
    """A chansetup with no gatekeeper (no ``--gk``): it sends no RAS at all
    and places its call straight to the address it is given; ``alias@ip:port``
    (ooh323c's ooParseDestination) puts the alias in the Setup's
    destinationAddress and ``ip:port`` in its destCallSignalAddress."""

    def __init__(self, binary: str, workdir: Path, name: str, *args: str, h323id: str,
                 number: str) -> None:
        self.name = name
        self.signal_port = free_port(socket.SOCK_STREAM)
        self.out_path = workdir / f"{name}.out"
        self.workdir = workdir
        command = ["stdbuf", "-oL", binary, "--use-ip", "127.0.0.1", "--use-port",
                   str(self.signal_port), "--h323id", h323id, "--user-number", number, *args]
        with open(self.out_path, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "OO_ALLOW_LOOPBACK": "1"})


def _unregistered_alice(lab: Lab, *args: str) -> UnregisteredEndpoint:
    """alice (1001) without a gatekeeper, calling 2002 at the gatekeeper's
    call signalling address; ``-t -t``: her trace log shows each message."""
    alice = UnregisteredEndpoint(lab.binary, lab.workdir, "alice", "-t", "-t", *args,
                                 f"2002@{lab.signal_address}", h323id="alice", number="1001")
    lab.endpoints.append(alice)
    return alice


def _routed_lab_with(tmp_path, chansetup, config_text: str):
    config = tmp_path / "gatekeeper.ini"
    config.write_text(config_text)
    signal_port = free_port(socket.SOCK_STREAM)
    return _lab(tmp_path, chansetup, "--config", str(config), "--routed", "--call-signal-port",
                str(signal_port), signal_port=signal_port)


def _sent_setup(trace: str) -> str:
    """The Setup ooh323c printed before sending it (trace level ``-t -t``)."""
    start = trace.index("Built SETUP message")
    return trace[start:trace.index("Sent Message - Setup", start)]


def _asn_field(text: str, name: str, inner: str) -> str:
    """The value under ``name = {`` ... ``inner = {`` in ooh323c's print of a message."""
    after = text[text.index(f"{name} = {{"):]
    after = after[after.index(f"{inner} = {{"):]
    return after.splitlines()[1].split("printHandler.c:73")[-1].strip()


def test_unregistered_ooh323c_caller_is_routed_through_the_gatekeeper(tmp_path, chansetup):
    """[RoutedMode] AcceptUnregisteredCalls=1: alice (no --gk, no RAS) sends
    her Setup for 2002 straight to the gatekeeper's call signalling port; it is
    admitted on the Setup and routed to bob, registered as 2002."""
    labs = _routed_lab_with(tmp_path, chansetup, "[RoutedMode]\nAcceptUnregisteredCalls=1\n")
    lab = next(labs)
    try:
        bob = lab.start("bob", "--listen", "-exit-after", "10", "-t", "-t", h323id="bob",
                        number="2002")
        bob_id = lab.registered(bob)
        alice = _unregistered_alice(lab, "-duration", "2", "-exit-after", "10")
        assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
        alice.wait_for_output("onCallEstablished")
        trace = alice.trace_log()
        # What alice sent: no RAS, a Setup to the gatekeeper for alias 2002.
        assert "Parsing destination 2002@" in trace
        assert "Destination is parsed as dialed digits 2002" in trace
        assert f"connect to remote endpoint({lab.signal_address})" in trace
        assert "Gatekeeper" not in trace and "RegistrationRequest" not in trace
        setup = _sent_setup(trace)
        assert _asn_field(setup, "destinationAddress", "dialedDigits") == '"2002"'
        assert _asn_field(setup, "destCallSignalAddress", "port") == str(lab.signal_address
                                                                          .split(":")[1])
        alice_port = _asn_field(setup, "sourceCallSignalAddress", "port")
        call_guid = _asn_field(setup, "callIdentifier", "guid").strip("'H")
        alice_address = f"127.0.0.1:{alice_port}"
        # bob was called by the gatekeeper, not by alice: the Setup he got
        # names bob as its destination and a source address of the gatekeeper's
        # (its leg to bob), not alice's; her aliases are passed on.
        received = bob.trace_log()
        received = received[received.index("Received H.2250 Message"):]
        assert _asn_field(received, "destCallSignalAddress", "port") == str(bob.signal_port)
        source_port = _asn_field(received, "sourceCallSignalAddress", "port")
        assert source_port not in (alice_port, str(alice.signal_port)), source_port
        assert _asn_field(received, "sourceAddress", "dialedDigits") == '"1001"'
        assert _asn_field(received, "callIdentifier", "guid").strip("'H") == call_guid

        listing = lab.commands.command("c")
        assert listing[-1].startswith("Number of Calls: 1 "), listing
        assert listing[-1].endswith(" Proxied: 1"), listing
        # alice's leg is listed with her address and no endpoint id
        assert any(line.startswith(f"ACF|{alice_address}||") and "|false|" in line
                   for line in listing), listing
        # bob's answerCall ARQ is confirmed; alice sent none (no ACF for her).
        callee_acf = lab.events.wait_for("ACF|", contains="|true|")
        fields = callee_acf.rstrip(";").split("|")
        assert fields[1:3] == [bob.signal_address, bob_id]
        call_id = fields[7]
        assert call_id.replace("-", "") == call_guid
        assert lab.events.matching("ACF|", contains="|false|") == []
        assert lab.events.matching("ARQ|") == [] and lab.events.matching("ARJ|") == []

        fields = _routed_cdr_after_clearing(lab, alice, bob, call_id)
        # no caller endpoint id; the caller's address is alice's own
        assert fields[6:10] == [alice_address, "", bob.signal_address, bob_id]
        assert fields[10] == "2002:dialedDigits"
        assert fields[11] == "1001:dialedDigits=alice:h323_ID"
        time.sleep(0.5)                                 # bob's DRQ ends nothing twice
        assert len(lab.cdr_lines()) == 1
        assert len(lab.events.matching("CDR|")) == 1
        assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")
    finally:
        next(labs, None)


def test_unregistered_ooh323c_caller_is_released_by_default(tmp_path, chansetup):
    """GnuGk's default (AcceptUnregisteredCalls=0): alice's Setup with no ARQ
    before it is answered with ReleaseComplete, callerNotRegistered; bob is
    never called and there is no call and no CDR."""
    labs = _routed_lab_with(tmp_path, chansetup, "[RoutedMode]\nGKRouted=1\n")
    lab = next(labs)
    try:
        bob = lab.bob(exit_after=6)
        lab.registered(bob)
        alice = _unregistered_alice(lab, "-duration", "2", "-exit-after", "6")
        # ooh323c maps ReleaseCompleteReason callerNotRegistered to this
        assert "OO_REASON_GK_NOCALLERUSER" in alice.wait_for_output("onCallCleared")
        assert "onCallEstablished" not in alice.output()
        trace = alice.trace_log()
        assert f"connect to remote endpoint({lab.signal_address})" in trace
        assert "H.225 Release Complete message received" in trace
        assert "Cause of Release Complete is 1f." in trace      # Q.850 31, normal unspecified
        assert "callerNotRegistered" in trace[trace.index("releaseComplete = {"):]
        assert alice.wait_exit() == 0
        assert "onIncomingCall" not in bob.output()
        assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")
        assert lab.events.matching("CDR|") == [] and lab.events.matching("ACF|") == []
        assert lab.cdr_lines() == []
    finally:
        next(labs, None)


def test_unregistered_ooh323c_caller_to_a_virtual_queue_waits_for_route_to_alias(tmp_path,
                                                                                 chansetup):
    """alice (no gatekeeper) calls 800@gatekeeper, a virtual queue: her Setup
    is held, announced in a RouteRequest for an ``unregistered`` caller and
    a Setup, and routed to bob by ``RouteToAlias 2002 unregistered CRV``."""
    labs = _routed_lab_with(tmp_path, chansetup,
                            "[RoutedMode]\nAcceptUnregisteredCalls=1\n"
                            "[RoutingPolicy]\ndefault=explicit,internal,vqueue\n"
                            "[CTI::Agents]\nVirtualQueueAliases=800\n")
    lab = next(labs)
    try:
        bob = lab.bob(exit_after=10)
        bob_id = lab.registered(bob)
        alice = UnregisteredEndpoint(lab.binary, lab.workdir, "alice", "-t", "-t", "-duration",
                                     "2", "-exit-after", "10", f"800@{lab.signal_address}",
                                     h323id="alice", number="1001")
        lab.endpoints.append(alice)
        request = lab.events.wait_for("RouteRequest|").rstrip(";").split("|")
        setup = _sent_setup(alice.trace_log())
        crv = re.search(r"callReference = (\d+)", setup).group(1)
        alice_address = f"127.0.0.1:{_asn_field(setup, 'sourceCallSignalAddress', 'port')}"
        guid = _asn_field(setup, "callIdentifier", "guid").strip("'H")
        assert request[1:6] == [alice_address, "unregistered", crv, "800", "1001"]
        assert request[6].replace("-", "") == guid
        assert request[-1] == "Setup"
        time.sleep(0.3)
        assert "onIncomingCall" not in bob.output()             # held: bob not called yet
        lab.commands.sock.sendall(f"RouteToAlias 2002 unregistered {crv}\r\n".encode())
        assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
        alice.wait_for_output("onCallEstablished")
        assert "OO_REASON_LOCAL_CLEARED" in alice.wait_for_output("onCallCleared", timeout=10)
        assert wait_until(lambda: len(lab.cdr_lines()) == 1), lab.cdr_lines()
        fields = lab.cdr_lines()[0].rstrip(";").split("|")
        assert fields[2].replace(" ", "") == guid
        assert fields[4] != "unconnected"
        assert fields[6:11] == [alice_address, "", bob.signal_address, bob_id,
                                "2002:dialedDigits"]
    finally:
        next(labs, None)


def test_unregistered_ooh323c_caller_to_an_unknown_number_is_released(tmp_path, chansetup):
    """AcceptUnregisteredCalls=1 but 9999 is nobody: ReleaseComplete with
    calledPartyNotRegistered and Q.850 cause 20 (H.225.0 Table 5), which
    ooh323c reports as OO_REASON_NOUSER; no call, no CDR."""
    labs = _routed_lab_with(tmp_path, chansetup, "[RoutedMode]\nAcceptUnregisteredCalls=1\n")
    lab = next(labs)
    try:
        alice = UnregisteredEndpoint(lab.binary, lab.workdir, "alice", "-t", "-t", "-duration",
                                     "2", "-exit-after", "6", f"9999@{lab.signal_address}",
                                     h323id="alice", number="1001")
        lab.endpoints.append(alice)
        assert "OO_REASON_NOUSER" in alice.wait_for_output("onCallCleared")
        trace = alice.trace_log()
        assert "Cause of Release Complete is 14." in trace          # hex: 20
        assert "calledPartyNotRegistered" in trace[trace.index("releaseComplete = {"):]
        assert "onCallEstablished" not in alice.output()
        assert alice.wait_exit() == 0
        assert lab.commands.command("c")[-1].startswith("Number of Calls: 0 ")
        assert lab.events.matching("CDR|") == [] and lab.cdr_lines() == []
    finally:
        next(labs, None)
