"""The event bus (gatekeeper.events.EventBus) and the frozen events it carries."""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent

from gatekeeper.events import (
    CallDetailRecord,
    EndpointRegistered,
    EventBus,
    Notice,
)
from gatekeeper.h225.ras import h323_id
from gatekeeper.interfaces import IEventBus


def failures_logged(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("log_level") == LogLevel.critical and "log_failure" in e]


class Boom(Exception):
    pass


def test_bus_provides_ievent_bus():
    assert IEventBus.providedBy(EventBus())


def test_publish_delivers_synchronously_to_every_observer_in_subscription_order():
    bus = EventBus()
    order = []
    bus.subscribe(lambda e: order.append(("first", e)))
    bus.subscribe(lambda e: order.append(("second", e)))
    bus.subscribe(lambda e: order.append(("third", e)))
    bus.publish(Notice("one"))
    # Delivered before publish() returned, in order.
    assert order == [("first", Notice("one")), ("second", Notice("one")), ("third", Notice("one"))]
    bus.publish(Notice("two"))
    assert [name for name, e in order[3:]] == ["first", "second", "third"]
    assert all(e == Notice("two") for _, e in order[3:])


def test_events_arrive_in_the_order_they_were_published():
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    for i in range(50):
        bus.publish(Notice(str(i)))
    assert [e.text for e in seen] == [str(i) for i in range(50)]


def test_publish_without_observers_does_nothing():
    bus = EventBus()
    bus.publish(Notice("nobody listens"))
    assert bus.failures == 0


def test_subscribing_the_same_observer_twice_delivers_once():
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    bus.subscribe(seen.append)
    bus.publish(Notice("x"))
    assert seen == [Notice("x")]
    assert len(bus.observers) == 1


def test_subscribing_a_non_callable_is_refused():
    bus = EventBus()
    with pytest.raises(TypeError):
        bus.subscribe("not callable")
    assert bus.observers == ()


def test_observer_added_at_run_time_receives_only_later_events():
    bus = EventBus()
    early, late = [], []
    bus.subscribe(early.append)
    bus.publish(Notice("before"))
    bus.subscribe(late.append)
    bus.publish(Notice("after"))
    assert [e.text for e in early] == ["before", "after"]
    assert [e.text for e in late] == ["after"]


def test_unsubscribed_observer_receives_nothing_more():
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    bus.publish(Notice("one"))
    bus.unsubscribe(seen.append)
    bus.publish(Notice("two"))
    assert [e.text for e in seen] == ["one"]
    assert bus.observers == ()


def test_unsubscribing_an_unknown_observer_is_not_an_error():
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    bus.unsubscribe(lambda e: None)
    bus.publish(Notice("still here"))
    assert seen == [Notice("still here")]


def test_observer_subscribed_during_delivery_gets_the_next_event_not_the_current_one():
    bus = EventBus()
    late = []

    def subscriber(event):
        bus.subscribe(late.append)

    bus.subscribe(subscriber)
    bus.publish(Notice("current"))
    assert late == []
    bus.publish(Notice("next"))
    assert [e.text for e in late] == ["next"]


def test_observer_removed_during_delivery_still_gets_the_current_event_then_nothing():
    bus = EventBus()
    victim = []

    def remover(event):
        bus.unsubscribe(victim.append)

    bus.subscribe(remover)
    bus.subscribe(victim.append)
    bus.publish(Notice("current"))
    assert [e.text for e in victim] == ["current"]
    bus.publish(Notice("next"))
    assert [e.text for e in victim] == ["current"]


def test_observer_may_unsubscribe_itself_during_delivery():
    bus = EventBus()
    seen, after = [], []

    def once(event):
        seen.append(event)
        bus.unsubscribe(once)

    bus.subscribe(once)
    bus.subscribe(after.append)
    bus.publish(Notice("a"))
    bus.publish(Notice("b"))
    assert [e.text for e in seen] == ["a"]
    assert [e.text for e in after] == ["a", "b"]


def test_observer_publishing_during_delivery_is_delivered_synchronously():
    bus = EventBus()
    seen = []

    def echo(event):
        if event.text == "ping":
            bus.publish(Notice("pong"))

    bus.subscribe(echo)
    bus.subscribe(seen.append)
    bus.publish(Notice("ping"))
    # The nested publish completes inside the outer delivery.
    assert [e.text for e in seen] == ["pong", "ping"]


def test_failing_observer_is_isolated_logged_and_counted(logged):
    bus = EventBus()
    before, after = [], []

    def broken(event):
        raise Boom("observer broke")

    bus.subscribe(before.append)
    bus.subscribe(broken)
    bus.subscribe(after.append)
    bus.publish(Notice("one"))
    bus.publish(Notice("two"))

    assert [e.text for e in before] == ["one", "two"]
    assert [e.text for e in after] == ["one", "two"]
    assert bus.failures == 2
    failures = failures_logged(logged)
    assert len(failures) == 2
    assert all(f["log_failure"].check(Boom) for f in failures)
    assert failures[0]["event"] == "Notice"
    assert failures[0]["observer"] is broken


def test_failing_observer_on_a_bus_with_a_clock_is_logged_at_a_bounded_rate(logged):
    clock = Clock()
    bus = EventBus(clock)
    after = []

    def broken(event):
        raise Boom("observer broke")

    bus.subscribe(broken)
    bus.subscribe(after.append)
    for number in range(500):               # e.g. one per datagram of a flood
        bus.publish(Notice(str(number)))
    assert len(after) == 500 and bus.failures == 500
    assert len(failures_logged(logged)) == 1          # the traceback, once
    clock.advance(60)
    bus.publish(Notice("later"))
    lines = [e for e in logged if "skipped" in e]
    assert len(lines) == 2 and lines[-1]["skipped"] == 499
    assert "499 more like it not logged" in formatEvent(lines[-1])
    assert "more like it" not in formatEvent(lines[0])
    assert len(failures_logged(logged)) == 1


def test_failing_observer_stays_subscribed_and_receives_later_events(logged):
    bus = EventBus()
    calls = []

    def flaky(event):
        calls.append(event)
        if event.text == "bad":
            raise Boom()

    bus.subscribe(flaky)
    bus.publish(Notice("bad"))
    bus.publish(Notice("good"))
    assert [e.text for e in calls] == ["bad", "good"]
    assert bus.failures == 1


def test_events_are_frozen():
    event = EndpointRegistered(("10.0.0.1", 1720), ("10.0.0.1", 1719), (h323_id("alice"),),
                               "terminal", "1_endp")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.endpoint_id = "2_endp"


def test_events_compare_by_value():
    one = EndpointRegistered(None, None, (h323_id("a"),), "terminal", "1_endp")
    same = EndpointRegistered(None, None, (h323_id("a"),), "terminal", "1_endp")
    other = EndpointRegistered(None, None, (h323_id("b"),), "terminal", "1_endp")
    assert one == same
    assert one != other


def test_trace_levels_belong_to_the_event_type():
    assert EndpointRegistered.trace_level == 2
    assert CallDetailRecord.trace_level == 1
    assert Notice.trace_level == 0


def _cdr(connect_time, disconnect_time):
    return CallDetailRecord(
        call_number=1, call_id=b"\x01" * 16, conference_id=b"\x01" * 16, setup_time=100.0,
        connect_time=connect_time, disconnect_time=disconnect_time,
        caller_signal_address=None, caller_endpoint_id="a", callee_signal_address=None,
        callee_endpoint_id="b", destination_info=(), source_info=(), gatekeeper_name="GK")


def test_cdr_duration_counts_whole_seconds_from_connect_to_disconnect():
    assert _cdr(110.0, 152.9).duration == 42


def test_cdr_duration_is_zero_for_a_call_that_never_connected():
    assert _cdr(None, 152.9).duration == 0


def test_cdr_duration_is_never_negative():
    assert _cdr(200.0, 150.0).duration == 0
