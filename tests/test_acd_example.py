"""The example ACD's decisions (doc/examples/acd.py), line by line."""

from __future__ import annotations

import importlib.util
import sys

from gkprocess import ROOT

spec = importlib.util.spec_from_file_location("acd_example", ROOT / "doc" / "examples" / "acd.py")
acd = importlib.util.module_from_spec(spec)
sys.modules["acd_example"] = acd   # dataclasses look their module up
spec.loader.exec_module(acd)

CALL_A = "RouteRequest|10.0.0.1:1720|1_endp|10|support|alice|aa-bb|||10.0.0.1:1719|ARQ;"
CALL_B = "RouteRequest|10.0.0.3:1720|3_endp|11|support|carol||||10.0.0.3:1719|ARQ;"


def test_first_idle_agent_in_order_and_waiting_calls_get_the_next_free_one():
    d = acd.Distributor(["agent1", "agent2"])
    assert d.on_line("RCF|10.0.0.5:1720|agent2:h323_ID|terminal|5_endp;") == []
    assert d.on_line("RCF|10.0.0.4:1720|agent1:h323_ID=4004:dialedDigits|terminal|4_endp") == []
    assert d.on_line(CALL_A) == ["RouteToAlias agent1 1_endp 10 aa-bb"]
    assert d.on_line(CALL_B) == ["RouteToAlias agent2 3_endp 11"]
    third = "RouteRequest|10.0.0.6:1720|6_endp|12|support|dave||||10.0.0.6:1719|ARQ;"
    assert d.on_line(third) == []                      # everyone busy: it waits
    cdr = ("CDR|1|aa bb|30|Thu, 26 Nov 2026 14:13:13 +0000|Thu, 26 Nov 2026 14:13:43 +0000|"
           "10.0.0.1:1720|1_endp|10.0.0.4:1720|4_endp|agent1:h323_ID|alice:h323_ID|GK;")
    assert d.on_line(cdr) == ["RouteToAlias agent1 6_endp 12"]


def test_unregistered_agent_is_not_used():
    d = acd.Distributor(["agent1"])
    d.on_line("RCF|10.0.0.4:1720|agent1:h323_ID|terminal|4_endp;")
    d.on_line("URQ|10.0.0.4:1719|4_endp|maintenance;")
    assert d.on_line(CALL_A) == []
    assert d.on_line("RCF|10.0.0.4:1720|agent1:h323_ID|terminal|7_endp;") == [
        "RouteToAlias agent1 1_endp 10 aa-bb"]


def test_telnet_negotiation_is_not_text():
    assert acd._strip_telnet(b"\xff\xfb\x01\xff\xfe\x22Version:") == b"Version:"
