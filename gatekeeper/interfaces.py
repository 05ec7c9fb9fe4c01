"""Interfaces between the layers (see DESIGN.md)."""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IEvent(Interface):
    """A frozen record of something the gatekeeper did."""

    trace_level = Attribute(
        "0, 1 or 2: the lowest status-port trace level at which the event is shown")


class IEventObserver(Interface):
    """Something that wants every event published on the bus."""

    def __call__(event):
        """Receive one event; exceptions are logged by the bus and go no further."""


class IEventBus(Interface):
    """Synchronous publish/subscribe of events."""

    def subscribe(observer):
        """Add an observer (a callable taking one event)."""

    def unsubscribe(observer):
        """Remove an observer; removing an unknown one is not an error."""

    def publish(event):
        """Deliver ``event`` to every observer now, in subscription order."""


class IRoutingPolicy(Interface):
    """One link of the routing chain (``[RoutingPolicy]``)."""

    name = Attribute("the policy's name in the configuration, e.g. 'internal'")

    def route(request):
        """Return a :class:`gatekeeper.core.routing.Route`, a Deferred firing
        with one (policies that ask someone else, e.g. a virtual queue), or
        None to let the next policy try."""
