"""Calls between zones with a real, independent H.323 stack (ooh323c's
``chansetup``), issue 12.

Two real ``twistd -n gatekeeper`` processes on 127.0.0.1:

- GK1 and GK2, neighbours of each other (``[RasSrv::Neighbors]``,
  ``[Neighbor::NAME]`` Host and SendPrefixes=*, ``[RoutingPolicy]
  default=explicit,internal,neighbor``).  alice (ooh323c) registered at GK1
  calls bob (ooh323c) registered at GK2, by number and by h323-ID.  Direct
  mode: GK1 finds bob by LRQ, its ACF sends alice's Setup straight to bob,
  bob's answerCall ARQ is GK2's; each gatekeeper gets its endpoint's DRQ and
  writes its CDR.  Routed mode: alice's Setup goes to GK1, GK1's leg to GK2
  (the address GK2's LCF named), GK2's leg to bob; fastStart and tunnelled
  H.245 pass both relays; each gatekeeper writes the CDR of its side.
- A child (``[Endpoint] Gatekeeper=`` the parent, ``[RoutingPolicy]
  default=explicit,internal,parent``, routed mode) and its parent: alice at
  the child calls bob registered at the parent, the child asks the parent
  by ARQ and routes the call; it connects.

What each side did is read from the ooh323c endpoints' output and trace logs
and from each gatekeeper's status port and ``cdr.log``.  The fixtures,
endpoint wrapper and helpers are those of test_interop_ooh323c.py; the
binary is ``$OOH323C_BIN`` (skipped with the reason when there is none).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from gkprocess import GatekeeperProcess, StatusSession, free_port
from test_interop_ooh323c import Endpoint, Lab, chansetup, wait_until  # noqa: F401 (fixture)


class Zone(Lab):
    """One gatekeeper in its own directory (its twistd.log, cdr.log and its
    endpoints' output and trace logs), with the Lab's endpoint helpers."""

    def __init__(self, workdir: Path, binary: str, name: str) -> None:
        workdir.mkdir()
        self.name = name
        self.status_port = free_port(socket.SOCK_STREAM)
        self.signal_port = free_port(socket.SOCK_STREAM)
        super().__init__(workdir, binary, free_port(), None)

    def start_gatekeeper(self, config_text: str, routed: bool) -> None:
        config = self.workdir / "gatekeeper.ini"
        config.write_text(f"[Gatekeeper::Main]\nName={self.name}\n" + config_text)
        args = ["--config", str(config), "--interface", "127.0.0.1",
                "--ras-port", str(self.ras_port), "--discovery-port", "0",
                "--status-port", str(self.status_port)]
        if routed:
            args += ["--routed", "--call-signal-port", str(self.signal_port)]
            self.signal_address = f"127.0.0.1:{self.signal_port}"
        self.gatekeeper = GatekeeperProcess(self.workdir, *args).start()
        self.events = StatusSession(self.status_port, trace=2)
        self.commands = StatusSession(self.status_port, trace=0)

    def stop(self) -> None:
        for endpoint in self.endpoints:
            endpoint.kill()
        for session in (self.events, self.commands):
            if session is not None:
                session.close()
        if self.gatekeeper is not None:
            self.gatekeeper.stop()

    def calls_line(self) -> str:
        """The last line of ``c``: ``Number of Calls: N Active: A From Neighbor: ...``."""
        return self.commands.command("c")[-1]

    def one_cdr(self) -> list[str]:
        """The fields of the one CDR in cdr.log, once it is there."""
        assert wait_until(lambda: len(self.cdr_lines()) >= 1, timeout=15), \
            f"{self.name}: no CDR\n{self.gatekeeper.log()[-3000:]}"
        assert len(self.cdr_lines()) == 1, self.cdr_lines()
        return self.cdr_lines()[0].rstrip(";").split("|")


def neighbour_config(other: Zone, routed: bool, extra: str = "") -> str:
    text = ("[RasSrv::Neighbors]\n"
            f"{other.name}=GnuGk\n"
            f"[Neighbor::{other.name}]\n"
            f"Host=127.0.0.1:{other.ras_port}\n"
            "SendPrefixes=*\n"
            "[RasSrv::LRQFeatures]\nNeighborTimeout=2\nSendRetries=1\n"
            "[RoutingPolicy]\ndefault=explicit,internal,neighbor\n")
    if routed:
        text += "[RoutedMode]\nGKRouted=1\nAcceptNeighborsCalls=1\n" + extra
    return text


def _neighbours(tmp_path, chansetup, routed: bool, extra: str = ""):
    gk1 = Zone(tmp_path / "GK1", chansetup, "GK1")
    gk2 = Zone(tmp_path / "GK2", chansetup, "GK2")
    try:
        gk1.start_gatekeeper(neighbour_config(gk2, routed, extra), routed)
        gk2.start_gatekeeper(neighbour_config(gk1, routed, extra), routed)
        yield gk1, gk2
    finally:
        gk1.stop()
        gk2.stop()


@pytest.fixture
def direct_zones(tmp_path, chansetup):
    yield from _neighbours(tmp_path, chansetup, routed=False)


@pytest.fixture
def routed_zones(tmp_path, chansetup):
    yield from _neighbours(tmp_path, chansetup, routed=True)


def _acf(zone: Zone, answered: bool) -> list[str]:
    line = zone.events.wait_for("ACF|", contains="|true|" if answered else "|false|")
    return line.rstrip(";").split("|")


def _talked(alice: Endpoint, bob: Endpoint) -> None:
    """The call was set up, alice talked 2 s and hung up, both saw it end."""
    assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
    alice.wait_for_output("onCallEstablished")
    assert "OO_REASON_LOCAL_CLEARED" in alice.wait_for_output("onCallCleared", timeout=15)
    assert "OO_REASON_REMOTE_CLEARED" in bob.wait_for_output("onCallCleared", timeout=15)
    assert alice.wait_exit() == 0


def _media_and_h245(alice: Endpoint, bob: Endpoint) -> None:
    """fastStart: each side transmits to the port the other receives on (the
    OLCs went through every relay unchanged); H.245 tunnelled both ways:
    capabilities exchanged and acknowledged, master/slave determined."""
    def ports(endpoint: Endpoint, what: str) -> set[str]:
        return set(re.findall(rf"Starting {what} channel (?:at|to) 127\.0\.0\.1:(\d+)",
                              endpoint.output()))
    assert ports(alice, "transmit") == ports(bob, "receive") != set()
    assert ports(bob, "transmit") == ports(alice, "receive") != set()
    for endpoint in (alice, bob):
        log = endpoint.trace_log()
        assert "Tunneled Message - TerminalCapabilitySet " in log, endpoint.name
        assert "Tunneled Message - TerminalCapabilitySetAck" in log, endpoint.name
        assert "MasterSlaveDetermination done" in log, endpoint.name


# --- neighbours, direct mode -------------------------------------------------


@pytest.mark.parametrize("dialled, destination_alias", [
    ("2002", "2002:dialedDigits"),
    ("bob", "bob:h323_ID"),
], ids=["by-number", "by-h323id"])
def test_direct_call_from_gk1_to_an_ooh323c_endpoint_at_neighbour_gk2(
        direct_zones, dialled, destination_alias):
    gk1, gk2 = direct_zones
    bob = gk2.bob(exit_after=10)
    bob_id = gk2.registered(bob)
    alice = gk1.alice("-duration", "2", "-exit-after", "10", dialled)
    alice_id = gk1.registered(alice)

    # GK2 answered GK1's LRQ for bob with an LCF naming bob's endpoint id.
    lcf = gk2.events.wait_for("LCF|").rstrip(";").split("|")
    assert lcf[1:3] == ["127.0.0.1", bob_id]
    assert lcf[3] == destination_alias
    # GK1 confirmed alice's ARQ, direct: her Setup went to bob's address.
    fields = _acf(gk1, answered=False)
    assert fields[1:3] == [alice.signal_address, alice_id]
    assert fields[4] == destination_alias and fields[8] == "Direct"
    call_id = fields[7]
    _talked(alice, bob)
    assert f"connect to remote endpoint({bob.signal_address})" in alice.trace_log()
    # bob's answerCall ARQ went to his own gatekeeper, GK2, for the same call.
    fields = _acf(gk2, answered=True)
    assert fields[1:3] == [bob.signal_address, bob_id]
    assert fields[7] == call_id and fields[8] == "Direct"
    assert gk1.events.matching("ACF|", contains="|true|") == []
    assert gk2.events.matching("ACF|", contains="|false|") == []

    # Each endpoint's DRQ reached its own gatekeeper, for that call.
    [dcf1] = gk1.events.wait_for_lines("DCF|", 1, timeout=15)
    [dcf2] = gk2.events.wait_for_lines("DCF|", 1, timeout=15)
    assert dcf1.split("|")[2] == alice_id and dcf1.endswith(f"|{call_id};")
    assert dcf2.split("|")[2] == bob_id and dcf2.endswith(f"|{call_id};")

    # And each wrote the CDR of its side.  GK2 saw bob answer (his
    # answerCall ARQ is the connect in direct mode): 2 s connected, caller
    # alice's Setup address and no endpoint id (she is nobody at GK2).
    # GK1 never hears of the answer: alice's Setup and bob's Connect pass
    # between the endpoints and ooh323c's DRQ carries no usageInformation,
    # so its CDR is alice -> bob's address, unconnected, duration 0.
    cdr1, cdr2 = gk1.one_cdr(), gk2.one_cdr()
    for cdr, gk in ((cdr1, gk1), (cdr2, gk2)):
        assert cdr[2] == call_id.replace("-", " ")
        assert cdr[10] == destination_alias
        assert set(cdr[11].split("=")) == {"1001:dialedDigits", "alice:h323_ID"}
        assert cdr[12] == gk.name
    assert cdr1[6:10] == [alice.signal_address, alice_id, bob.signal_address, ""]
    assert cdr1[3:5] == ["0", "unconnected"]
    assert cdr2[7:10] == ["", bob.signal_address, bob_id]
    assert cdr2[6].startswith("127.0.0.1:")
    assert 1 <= int(cdr2[3]) <= 5 and cdr2[4] != "unconnected", cdr2
    assert gk1.calls_line().startswith("Number of Calls: 0 ")
    assert gk2.calls_line().startswith("Number of Calls: 0 ")


def test_direct_call_to_a_number_no_zone_has_is_rejected(direct_zones):
    gk1, gk2 = direct_zones
    alice = gk1.alice("-duration", "2", "-exit-after", "8", "9999")
    gk1.registered(alice)
    lrj = gk2.events.wait_for("LRJ|").rstrip(";").split("|")
    assert lrj[1:3] == ["127.0.0.1", "9999:dialedDigits"]
    arj = gk1.events.wait_for("ARJ|").rstrip(";").split("|")
    assert arj[1] == alice.signal_address and arj[5] == "calledPartyNotRegistered"
    assert "OO_REASON_GK_NOCALLEDUSER" in alice.wait_for_output("onCallCleared")
    assert alice.wait_exit() == 0
    assert gk1.cdr_lines() == [] and gk2.cdr_lines() == []


# --- neighbours, routed mode -------------------------------------------------


def test_routed_call_from_gk1_through_gk2_to_an_ooh323c_endpoint(routed_zones):
    gk1, gk2 = routed_zones
    bob = gk2.bob(exit_after=10)
    bob_id = gk2.registered(bob)
    alice = gk1.alice("-duration", "2", "-exit-after", "10", "2002")
    alice_id = gk1.registered(alice)

    fields = _acf(gk1, answered=False)
    assert fields[1:3] == [alice.signal_address, alice_id]
    assert fields[4] == "2002:dialedDigits" and fields[8] != "Direct"
    call_id = fields[7]
    # GK2's LCF, in routed mode, names GK2 itself as the place to call.
    lcf = gk2.events.wait_for("LCF|").rstrip(";").split("|")
    assert lcf[1:4] == ["127.0.0.1", bob_id, "2002:dialedDigits"]

    assert "onIncomingCall" in bob.wait_for_output("onCallEstablished")
    alice.wait_for_output("onCallEstablished")
    # alice called GK1 only; bob was called by GK2 (his answerCall ARQ went
    # there, for alice's call id); GK1 never admitted bob.
    assert f"connect to remote endpoint({gk1.signal_address})" in alice.trace_log()
    assert f"connect to remote endpoint({bob.signal_address})" not in alice.trace_log()
    fields = _acf(gk2, answered=True)
    assert fields[1:3] == [bob.signal_address, bob_id] and fields[7] == call_id
    # While it is up, both gatekeepers carry it: GK1 as a routed call of its
    # own endpoint, GK2 as a call from its neighbour's zone.
    line1, line2 = gk1.calls_line(), gk2.calls_line()
    assert line1.startswith("Number of Calls: 1 ") and line1.endswith(" Proxied: 1"), line1
    assert line2.startswith("Number of Calls: 1 ") and line2.endswith(" Proxied: 1"), line2
    assert " From Neighbor: 1 " in line2, line2
    assert " From Neighbor: 0 " in line1, line1

    assert "OO_REASON_LOCAL_CLEARED" in alice.wait_for_output("onCallCleared", timeout=15)
    assert "OO_REASON_REMOTE_CLEARED" in bob.wait_for_output("onCallCleared", timeout=15)
    assert alice.wait_exit() == 0
    _media_and_h245(alice, bob)

    # The CDRs, one per gatekeeper, same call: GK1 alice -> GK2's call
    # signalling address (where its leg went), GK2 GK1's leg -> bob.
    cdr1, cdr2 = gk1.one_cdr(), gk2.one_cdr()
    for cdr, gk in ((cdr1, gk1), (cdr2, gk2)):
        assert cdr[2] == call_id.replace("-", " ")
        assert cdr[4] != "unconnected"
        assert 1 <= int(cdr[3]) <= 5, cdr
        assert cdr[10] == "2002:dialedDigits"
        assert cdr[11] == "1001:dialedDigits=alice:h323_ID"
        assert cdr[12] == gk.name
    assert cdr1[6:10] == [alice.signal_address, alice_id, gk2.signal_address, ""]
    assert cdr2[7:10] == ["", bob.signal_address, bob_id]
    assert cdr2[6].startswith("127.0.0.1:") and cdr2[6] != alice.signal_address
    assert gk1.calls_line().startswith("Number of Calls: 0 ")
    assert gk2.calls_line().startswith("Number of Calls: 0 ")


# --- parent and child, routed mode -------------------------------------------


@pytest.fixture
def family(tmp_path, chansetup):
    parent = Zone(tmp_path / "parent", chansetup, "ParentGK")
    child = Zone(tmp_path / "child", chansetup, "ChildGK")
    try:
        parent.start_gatekeeper("[RoutedMode]\nGKRouted=1\n", routed=True)
        child.start_gatekeeper(
            "[Endpoint]\n"
            f"Gatekeeper=127.0.0.1:{parent.ras_port}\nType=Gateway\nPrefix=9\n"
            "TimeToLive=60\nRRQRetryInterval=1\n"
            "[RoutingPolicy]\ndefault=explicit,internal,parent\n"
            "[RoutedMode]\nGKRouted=1\n", routed=True)
        yield parent, child
    finally:
        child.stop()
        parent.stop()


def _child_registered(parent: Zone, child: Zone) -> str:
    """Until the child's GK shows it registered at the parent; its endpoint id there."""
    lines: list[str] = []
    def registered() -> bool:
        nonlocal lines
        lines = child.commands.command("GK")
        return bool(lines) and lines[0].startswith(f"127.0.0.1:{parent.ras_port}\t")
    assert wait_until(registered, timeout=15, interval=0.2), lines
    return lines[0].split("\t")[1]


def test_routed_call_from_a_child_zone_to_an_ooh323c_endpoint_at_the_parent(family):
    parent, child = family
    child_id = _child_registered(parent, child)
    bob = parent.bob(exit_after=10)
    bob_id = parent.registered(bob)
    alice = child.alice("-duration", "2", "-exit-after", "10", "2002")
    alice_id = child.registered(alice)

    # The child admitted alice, routed; it asked the parent by ARQ as the
    # registered gateway it is there.
    fields = _acf(child, answered=False)
    assert fields[1:3] == [alice.signal_address, alice_id] and fields[8] != "Direct"
    call_id = fields[7]
    parent_acf = parent.events.wait_for("ACF|", contains=f"|{child_id}|")
    assert parent_acf.rstrip(";").split("|")[7] == call_id
    assert "|2002:dialedDigits|" in parent_acf

    _talked(alice, bob)
    assert f"connect to remote endpoint({child.signal_address})" in alice.trace_log()
    _media_and_h245(alice, bob)
    fields = _acf(parent, answered=True)
    assert fields[1:3] == [bob.signal_address, bob_id] and fields[7] == call_id

    cdr_child, cdr_parent = child.one_cdr(), parent.one_cdr()
    for cdr in (cdr_child, cdr_parent):
        assert cdr[2] == call_id.replace("-", " ")
        assert cdr[4] != "unconnected"
    assert cdr_child[6:8] == [alice.signal_address, alice_id]
    assert cdr_child[8] == parent.signal_address
    assert cdr_parent[7] == child_id
    assert cdr_parent[8:10] == [bob.signal_address, bob_id]

