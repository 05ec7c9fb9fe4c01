"""Neighbours in the service (issue 12): the configuration sections, the
status port's PrintNeighbors, and a reload handing new neighbour settings
to the RAS controller and the ``neighbor`` policy."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper import config, tap
from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.h225 import ras
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint

FIRST = """[Gatekeeper::Main]
Name=GK1
[RasSrv::Neighbors]
GK2=GnuGk
Old=10.0.0.7:1730;05,06
[Neighbor::GK2]
Host=10.0.0.2
SendPrefixes=02,!023,h323_ID:=3
AcceptPrefixes=*
ForwardLRQ=always
[RasSrv::LRQFeatures]
NeighborTimeout=3
SendRetries=0
ForwardHopCount=2
AcceptForwardedLRQ=1
ForwardResponse=0
ForwardLRQ=depends
AcceptNonNeighborLCF=0
AcceptNonNeighborLRQ=0
SendRIP=0
AlwaysForwardLRQ=0
"""
SECOND = """[Gatekeeper::Main]
Name=GK1
[RasSrv::Neighbors]
GK3=CiscoGk
[Neighbor::GK3]
Host=10.0.0.3:1740
SendPrefixes=*
"""


def test_every_neighbour_section_and_lrq_features_key_is_known():
    parsed = config.parse(read_ini(FIRST, "gk.ini"))
    assert parsed.warnings == ()
    gk2, old = parsed.neighbors.neighbors
    assert (gk2.name, gk2.host, gk2.port, gk2.forward_lrq) == ("GK2", "10.0.0.2", 1719, "always")
    assert (old.name, old.type, old.address) == ("Old", "Generic", ("10.0.0.7", 1730))
    assert parsed.neighbors.features.neighbor_timeout == 3


def test_a_neighbour_section_not_listed_is_warned_about_once():
    parsed = config.parse(read_ini(SECOND + "[Neighbor::Ghost]\nHost=10.0.0.9\n", "gk.ini"))
    assert parsed.warnings == ("gk.ini: [Neighbor::Ghost]: not listed in [RasSrv::Neighbors], "
                               "ignored",)


@pytest.mark.parametrize("text, where", [
    (SECOND.replace("10.0.0.3:1740", "gk3.example.org:1740"),
     "[Neighbor::GK3] Host=gk3.example.org:1740"),
    ("[RasSrv::Neighbors]\nOld=gk.example.org;*\n", "[RasSrv::Neighbors] Old=gk.example.org;*"),
    (SECOND + "[RasSrv::LRQFeatures]\nNeighborTimeout=soon\n",
     "[RasSrv::LRQFeatures] NeighborTimeout=soon"),
    (SECOND.replace("SendPrefixes=*", "SendPrefixes=!*"), "[Neighbor::GK3] SendPrefixes=!*"),
])
def test_bad_neighbour_settings_are_refused_naming_section_key_and_value(text, where):
    with pytest.raises(ConfigError) as caught:
        config.parse(read_ini(text, "gk.ini"))
    assert str(caught.value).startswith(f"gk.ini: {where}: ")


def make(path):
    options = tap.Options()
    options.parseOptions(["--config", str(path), "--status-port", "0"])
    clock = Clock()
    clock.advance(1_800_000_000)
    service = tap.makeService(options)
    service.clock = clock
    service.controller.clock = clock
    service.controller.neighbor_policy.clock = clock
    service.ras_protocol.clock = clock
    service.ras_protocol.transport = FakeDatagramTransport(host=("10.0.0.1", 1719))
    service.ras_protocol.startProtocol()
    return service


def status(service, line: bytes) -> bytes:
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 4000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
    client = service.status.buildProtocol(None)
    client.makeConnection(transport)
    transport.clear()
    client.dataReceived(line + b"\r\n")
    return transport.value()


def lrqs_for(service, number: str) -> dict[tuple, ras.RasPdu]:
    alice = FakeEndpoint(["alice"], ("10.0.0.50", 1720), ("10.0.0.50", 1719))
    protocol = service.ras_protocol
    protocol.datagramReceived(alice.rrq(), alice.ras_address)
    alice.read(protocol.transport.take()[0][0])
    protocol.datagramReceived(alice.arq([number]), alice.ras_address)
    return {address: ras.parse(data) for data, address in protocol.transport.take()
            if ras.parse(data).kind == "locationRequest"}


def test_print_neighbors_lists_each_and_a_reload_gives_the_controller_new_neighbours(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    service = make(path)
    assert status(service, b"pn") == (
        b"Neighbors\r\n"
        b"GK2\tGnuGk\t10.0.0.2:1719\t02,!023,h323_ID:=3\t*\r\n"
        b"Old\tGeneric\t10.0.0.7:1730\t05,06\t*\r\n"
        b"Number of Neighbors: 2\r\n;\r\n")
    lrqs = lrqs_for(service, "0212")
    assert set(lrqs) == {("10.0.0.2", 1719)}
    assert lrqs[("10.0.0.2", 1719)].hop_count == 2          # ForwardHopCount
    assert service.controller.hold_delay >= 3                 # NeighborTimeout x 1 try

    path.write_text(SECOND)
    assert service.reload("test")[0] is True
    assert [n.name for n in service.controller.config.neighbors.neighbors] == ["GK3"]
    assert service.controller.neighbor_policy.settings is service.controller.config.neighbors
    assert status(service, b"PrintNeighbors") == (
        b"Neighbors\r\nGK3\tCiscoGk\t10.0.0.3:1740\t*\t*\r\nNumber of Neighbors: 1\r\n;\r\n")
    lrqs = lrqs_for(service, "0213")
    assert set(lrqs) == {("10.0.0.3", 1740)}
    assert lrqs[("10.0.0.3", 1740)].can_map_alias is True     # a CiscoGk's LRQ


def test_with_no_neighbours_print_neighbors_is_gnugks_byte_for_byte(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text("[Gatekeeper::Main]\nName=GK1\n")
    assert status(make(path), b"pn") == b"Neighbors\r\nNumber of Neighbors: 0\r\n;\r\n"
