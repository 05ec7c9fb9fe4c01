"""MakeCall with a real, independent H.323 stack (ooh323c's ``chansetup``).

``MakeCall 2002 3003`` on the status port of the real ``twistd -n
gatekeeper``: the gatekeeper's pseudo endpoint calls bob (2002, ooh323c,
listening, answers by itself); when bob answers it gets a Facility
callForwarded naming 3003; bob releases the pseudo call and calls carol
(3003, ooh323c) himself, with his own ARQ and Setup. Checked in direct mode
and in routed mode (where bob's new call goes through the gatekeeper).

The fixtures (the gatekeeper process, status sessions, endpoints) are those
of test_interop_ooh323c.py.
"""

from __future__ import annotations

from test_interop_ooh323c import chansetup, lab, routed_lab, wait_until  # noqa: F401 (fixtures)


def _make_call(lab, line: bytes) -> str:
    lab.commands.sock.sendall(line)
    return lab.commands.read_until(lambda text: text.startswith(("MakeCall", "Error")))[-1]


def _bob_and_carol(lab):
    bob = lab.bob(exit_after=15)
    bob_id = lab.registered(bob)
    carol = lab.start("carol", "--listen", "-exit-after", "15", h323id="carol", number="3003")
    carol_id = lab.registered(carol)
    return bob, bob_id, carol, carol_id


def _check_make_call(lab, routed: bool) -> None:
    bob, bob_id, carol, carol_id = _bob_and_carol(lab)
    reply = _make_call(lab, b"MakeCall 2002 3003\r\n")
    assert reply == "MakeCall: calling 2002; when it answers it is asked to call 3003", reply
    # bob is called by the gatekeeper, answers, is forwarded and calls carol.
    assert "onIncomingCall" in carol.wait_for_output("onCallEstablished", timeout=12)
    log = bob.trace_log()
    assert "Call Forward Facility message received" in log, log[-3000:]
    # bob's own call to carol: his ARQ (not the pseudo endpoint's) is admitted.
    acf = lab.events.wait_for("ACF|", contains="|false|", timeout=5)
    assert acf.rstrip(";").split("|")[1:3] == [bob.signal_address, bob_id]
    # The pseudo call ended with its CDR; bob's call to carol is up.
    assert wait_until(lambda: len(lab.cdr_lines()) >= 1), lab.cdr_lines()
    pseudo = lab.cdr_lines()[0].rstrip(";").split("|")
    assert pseudo[7] == "" and pseudo[9] == bob_id      # caller: the gatekeeper itself
    assert pseudo[4] != "unconnected"                   # bob did answer it
    listing = lab.commands.command("c")
    assert listing[-1].startswith("Number of Calls: 1 "), listing
    text = "\n".join(listing)
    assert carol_id in text and bob_id in text and "Dial 3003" in text, listing
    if routed:
        assert listing[-1].endswith(" Proxied: 1"), listing
        assert f"connect to remote endpoint({lab.signal_address})" in bob.trace_log()


def test_make_call_with_ooh323c_in_direct_mode(lab):
    _check_make_call(lab, routed=False)


def test_make_call_with_ooh323c_in_routed_mode(routed_lab):
    _check_make_call(routed_lab, routed=True)


def test_make_call_to_an_unknown_source_is_an_error_line(lab):
    reply = _make_call(lab, b"MakeCall 5555 3003\r\n")
    assert reply == "Error: cannot call 5555: calledPartyNotRegistered"
    assert lab.cdr_lines() == []
