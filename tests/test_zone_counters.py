"""Calls from other zones in the call statistics (issue 12).

``Statistics`` and ``PrintCurrentCalls`` have "From Neighbor" and "From
Parent" fields.  Here a call counts "From Neighbor" when, in routed mode,
its Setup came from a configured neighbour gatekeeper's IP with no ARQ of
ours (``[RoutedMode] AcceptNeighborsCalls``), and "From Parent" when it came
from the parent's (``[Endpoint] Gatekeeper``).  ``ResetCallCounters`` zeroes
the totals.  In direct mode the gatekeeper never sees another zone's Setup,
so these stay 0.
"""

from __future__ import annotations

import time

import pytest
from twisted.internet.task import Clock

from gatekeeper.config import parse, read_ini
from gatekeeper.core.admission import SetupAdmitted, SetupRequest
from gatekeeper.core.calls import Call, CallTable
from gatekeeper.h225 import ras
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint
from test_status_commands_more import Client, register

NEIGHBOUR_IP = "192.0.2.20"
PARENT_IP = "192.0.2.30"
INI = f"""[Gatekeeper::Main]
Name=GK
TimeToLive=300
[RoutedMode]
GKRouted=1
[RasSrv::Neighbors]
GK2=GnuGk
[Neighbor::GK2]
Host={NEIGHBOUR_IP}
SendPrefixes=*
[Endpoint]
Gatekeeper={PARENT_IP}
Type=Gateway
Prefix=9
"""


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def service(ini: str = INI) -> GatekeeperService:
    clock = Clock()
    clock.advance(1_795_702_393)   # Thu, 26 Nov 2026 14:13:13 GMT
    gk = GatekeeperService(RasSettings(gatekeeper_id="GK"), ListenSettings(call_signal_port=1720), clock,
                           parse(read_ini(ini, "gk.ini")))
    gk.start_time = clock.seconds()
    gk.ras_protocol.transport = FakeDatagramTransport()
    gk.ras_protocol.startProtocol()
    return gk


@pytest.fixture
def gk() -> GatekeeperService:
    gk = service()
    bob = FakeEndpoint(["bob", "1001"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    register(gk, bob)
    return gk


# The Setups are handed to the signalling server's admission directly, with
# no relay behind them, so the calls are admitted but not "Proxied".
def setup_from(ip: str, number: str = "1001") -> SetupRequest:
    return SetupRequest(ras.new_guid(), ras.new_guid(), 7, (ip, 40000),
                        (ras.dialled_digits(number),))


def statistics(gk) -> list[bytes]:
    return Client(gk.status).say(b"s\n").split(b"\r\n")[4:6]


def test_a_neighbours_setup_counts_from_neighbor_now_and_in_the_totals(gk):
    admitted = gk.signalling.admission.on_setup(setup_from(NEIGHBOUR_IP))
    assert isinstance(admitted, SetupAdmitted) and admitted.destination == ("10.0.0.2", 1720)
    assert admitted.call.zone == "neighbor"
    current, total = statistics(gk)
    assert current == b"Current Calls: 1 Active: 0 From Neighbor: 1 From Parent: 0 Proxied: 0"
    assert total.startswith(b"Total Calls: 1 Successful: 0 From Neighbor: 1 From Parent: 0 "
                            b"Proxied: 0 Peak: 1 at ")
    calls = Client(gk.status).say(b"c\n").split(b"\r\n")
    assert b"Number of Calls: 1 Active: 0 From Neighbor: 1 From Parent: 0 Proxied: 0" in calls
    gk.controller.disconnect(admitted.call)
    current, total = statistics(gk)
    assert current == b"Current Calls: 0 Active: 0 From Neighbor: 0 From Parent: 0 Proxied: 0"
    assert total.startswith(b"Total Calls: 1 Successful: 0 From Neighbor: 1 From Parent: 0 ")


def test_the_parents_setup_counts_from_parent(gk):
    admitted = gk.signalling.admission.on_setup(setup_from(PARENT_IP))
    assert isinstance(admitted, SetupAdmitted) and admitted.call.zone == "parent"
    current, total = statistics(gk)
    assert current == b"Current Calls: 1 Active: 0 From Neighbor: 0 From Parent: 1 Proxied: 0"
    assert total.startswith(b"Total Calls: 1 Successful: 0 From Neighbor: 0 From Parent: 1 ")


def test_a_strangers_setup_is_refused_and_counts_nowhere(gk):
    refused = gk.signalling.admission.on_setup(setup_from("198.51.100.9"))
    assert refused.reason == "callerNotRegistered"
    assert statistics(gk)[1].startswith(b"Total Calls: 0 Successful: 0 From Neighbor: 0 "
                                        b"From Parent: 0 ")


def test_accept_unregistered_calls_admits_a_stranger_but_not_as_another_zones():
    gk = service(INI + "[RoutedMode]\nAcceptUnregisteredCalls=1\n")
    register(gk, FakeEndpoint(["bob", "1001"], ("10.0.0.2", 1720), ("10.0.0.2", 1719)))
    stranger = gk.signalling.admission.on_setup(setup_from("198.51.100.9"))
    neighbour = gk.signalling.admission.on_setup(setup_from(NEIGHBOUR_IP))
    assert (stranger.call.zone, neighbour.call.zone) == ("", "neighbor")
    assert statistics(gk)[0] == (b"Current Calls: 2 Active: 0 From Neighbor: 1 From Parent: 0 "
                                 b"Proxied: 0")


def test_with_accept_neighbors_calls_off_a_neighbours_setup_is_refused():
    gk = service(INI + "[RoutedMode]\nAcceptNeighborsCalls=0\n")
    register(gk, FakeEndpoint(["bob", "1001"], ("10.0.0.2", 1720), ("10.0.0.2", 1719)))
    assert gk.signalling.admission.on_setup(setup_from(NEIGHBOUR_IP)).reason \
        == "callerNotRegistered"
    assert gk.signalling.admission.on_setup(setup_from(PARENT_IP)).reason \
        == "callerNotRegistered"


def test_reset_call_counters_zeroes_the_zone_totals_not_the_current_calls(gk):
    gk.signalling.admission.on_setup(setup_from(NEIGHBOUR_IP))
    gk.signalling.admission.on_setup(setup_from(PARENT_IP))
    Client(gk.status).say(b"ResetCallCounters\n")
    current, total = statistics(gk)
    assert current == b"Current Calls: 2 Active: 0 From Neighbor: 1 From Parent: 1 Proxied: 0"
    assert total.startswith(b"Total Calls: 0 Successful: 0 From Neighbor: 0 From Parent: 0 ")


def test_the_table_counts_a_call_in_one_zone_once():
    table = CallTable()
    call = table.add(Call(1, b"\x01" * 16, bytes(16), "", None, 1, "b", None, (), (), 0, 1.0))
    table.from_zone(call, "neighbor")
    table.from_zone(call, "parent")          # already from a zone: unchanged
    table.from_zone(call, "elsewhere")
    assert call.zone == "neighbor" and table.total_from == {"neighbor": 1, "parent": 0}
