"""Reload hands each component its new settings in one ``reconfigure`` call.

The service builds frozen values from the parsed file and gives each
component one: the registry (identifier suffix, [RasSrv::GWPrefixes]), the
virtual queues ([CTI::Agents]), the RAS controller (a :class:`RasConfig`:
RAS settings, policy, router, rewrite rules, hold delay), which hands its
parts on to the core it owns (admission, registration, the bandwidth pool).
Registrations, calls and waiting RouteRequests are kept.
"""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper import tap
from gatekeeper.core.admission import Admission, AdmissionSettings
from gatekeeper.core.bandwidth import BandwidthPool
from gatekeeper.core.calls import CallTable
from gatekeeper.core.registration import Registration
from gatekeeper.core.registry import Endpoint, Registry, RegistrySettings
from gatekeeper.core.rewrite import RewriteRule
from gatekeeper.core.routing import Route, RoutingRequest
from gatekeeper.core.vqueue import VirtualQueues, VirtualQueueSettings
from gatekeeper.h225.ras import dialled_digits, h323_id
from gatekeeper.ras.controller import RasConfig, RasController, RasSettings
from gatekeeper.ras.policy import RasPolicy
from gatekeeper.status.protocol import StatusFactory
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint

FIRST = ("[Gatekeeper::Main]\nName=FirstGK\nTimeToLive=300\nTotalBandwidth=5000\n"
         "EndpointIdSuffix=_one\n"
         "[RasSrv::GWPrefixes]\nGW1=02\n"
         "[CTI::Agents]\nVirtualQueueAliases=800\nRequestTimeout=10\n")
SECOND = ("[Gatekeeper::Main]\nName=SecondGK\nTimeToLive=600\nTotalBandwidth=9000\n"
          "EndpointIdSuffix=_two\n"
          "[RasSrv::GWPrefixes]\nGW1=02,07\n"
          "[RasSrv::RewriteE164]\n0=10\n"
          "[RasSrv::RRQFeatures]\nOverwriteEPOnSameAddress=1\n"
          "[CTI::Agents]\nVirtualQueueAliases=900\nRequestTimeout=20\n")


def make(path):
    options = tap.Options()
    options.parseOptions(["--config", str(path), "--status-port", "0"])
    service = tap.makeService(options)
    clock = Clock()
    clock.advance(1_800_000_000)
    service.clock = clock
    service.controller.clock = clock
    service.ras_protocol.clock = clock
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    return service


@pytest.fixture
def reloaded(tmp_path, monkeypatch):
    """A service started on FIRST, every component's reconfigure recorded,
    then reloaded from SECOND; returns (service, {component: [settings...]})."""
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    service = make(path)
    seen: dict[str, list[object]] = {}
    components = {
        "registry": service.registry,
        "virtual queues": service.virtual_queues,
        "controller": service.controller,
        "admission": service.controller.admission,
        "registration": service.controller.registration,
        "bandwidth": service.controller.bandwidth,
        "status": service.status,
    }
    for name, component in components.items():
        original = type(component).reconfigure

        def record(settings, _name=name, _component=component, _original=original):
            seen.setdefault(_name, []).append(settings)
            return _original(_component, settings)

        monkeypatch.setattr(component, "reconfigure", record, raising=False)
    path.write_text(SECOND)
    ok, _ = service.reload("test")
    assert ok
    return service, seen


def test_a_reload_calls_each_components_reconfigure_once(reloaded):
    service, seen = reloaded
    assert {name: len(calls) for name, calls in seen.items()} == {
        "registry": 1, "virtual queues": 1, "controller": 1, "admission": 1,
        "registration": 1, "bandwidth": 1, "status": 1}


def test_the_registry_gets_the_new_suffix_and_gateway_prefixes(reloaded):
    service, seen = reloaded
    assert seen["registry"] == [RegistrySettings("_two", {"GW1": ("02", "07")})]
    assert service.registry.new_endpoint_id().endswith("_two")


def test_the_virtual_queues_get_the_new_cti_agents_section(reloaded):
    service, seen = reloaded
    assert seen["virtual queues"] == [VirtualQueueSettings(aliases=("900",),
                                                           request_timeout=20.0)]
    assert service.virtual_queues.match((h323_id("900"),)) == "900"
    assert service.virtual_queues.match((h323_id("800"),)) is None


def test_the_controller_gets_one_ras_config(reloaded):
    service, seen = reloaded
    [config] = seen["controller"]
    assert isinstance(config, RasConfig)
    assert config.settings.gatekeeper_id == "SecondGK"
    assert config.settings.time_to_live == 600
    assert config.policy.overwrite_ep_on_same_address is True
    assert config.rewrite_rules == (RewriteRule("0", "10"),)
    assert config.hold_delay == 22.0               # RequestTimeout + 2
    assert config.router is service.controller.router
    assert service.controller.config is config
    assert service.controller.name == "SecondGK"
    assert service.controller.hold_delay_ms == 22000


def test_admission_gets_name_router_rewrite_rules_and_bandwidth_from_the_controller(reloaded):
    service, seen = reloaded
    [settings] = seen["admission"]
    assert settings.gatekeeper_id == "SecondGK"
    assert settings.rewrite_rules == (RewriteRule("0", "10"),)
    assert settings.total_bandwidth == 9000
    assert settings.router is service.controller.config.router
    assert service.controller.admission.router is settings.router
    assert service.controller.admission.rewrite_rules == settings.rewrite_rules


def test_registration_gets_time_to_live_and_the_rrq_policy(reloaded):
    service, seen = reloaded
    [settings] = seen["registration"]
    assert (settings.gatekeeper_id, settings.time_to_live,
            settings.overwrite_ep_on_same_address) == ("SecondGK", 600, True)
    assert service.controller.registration.settings is settings


def test_the_bandwidth_pool_gets_the_new_total(reloaded):
    service, seen = reloaded
    assert seen["bandwidth"] == [9000]
    assert service.controller.bandwidth.total == 9000


def test_the_status_factory_gets_its_settings(reloaded):
    service, seen = reloaded
    assert len(seen["status"]) == 1 and isinstance(service.status, StatusFactory)


def test_reload_keeps_registrations_and_calls(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(FIRST)
    service = make(path)
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    for phone in (alice, bob):
        service.ras_protocol.datagramReceived(phone.rrq(), phone.ras_address)
        phone.read(service.ras_protocol.transport.take()[0][0])
    service.ras_protocol.datagramReceived(alice.arq(["bob"], bandwidth=1280), alice.ras_address)
    assert alice.read(service.ras_protocol.transport.take()[0][0]).kind == "admissionConfirm"
    path.write_text(SECOND)
    assert service.reload("test")[0]
    assert {e.endpoint_id for e in service.registry} == {alice.endpoint_id, bob.endpoint_id}
    assert len(service.calls) == 1
    assert service.controller.bandwidth.used == 1280   # the call keeps what it holds


# -- the components on their own ------------------------------------------------------


def test_controller_settings_policy_router_and_rewrite_rules_are_read_only():
    controller = RasController(RasSettings(), ev.EventBus(), Clock())
    for name, value in (("settings", RasSettings()), ("policy", RasPolicy()),
                        ("router", None), ("rewrite_rules", ())):
        with pytest.raises(AttributeError):
            setattr(controller, name, value)


def test_controller_reconfigure_hands_its_parts_on_to_the_core():
    controller = RasController(RasSettings(), ev.EventBus(), Clock())
    calls = controller.calls

    class Anywhere:
        def route(self, request):
            return Route(("10.9.9.9", 1720), policy="test")

    router = Anywhere()
    controller.reconfigure(RasConfig(
        RasSettings(gatekeeper_id="New", time_to_live=120, total_bandwidth=640, routed=True,
                    signal_address=("192.0.2.1", 1720)),
        RasPolicy(overwrite_ep_on_same_address=True), router, (RewriteRule("9", "49"),), 3.5))
    admission, registration = controller.admission, controller.registration
    assert admission.settings == AdmissionSettings("New", True, ("192.0.2.1", 1720), router,
                                                   (RewriteRule("9", "49"),), 640)
    assert admission.router is router and controller.router is router
    assert admission.rewrite((dialled_digits("912"),)) == (dialled_digits("4912"),)
    assert controller.bandwidth.total == 640
    assert (registration.settings.gatekeeper_id, registration.settings.time_to_live,
            registration.settings.overwrite_ep_on_same_address) == ("New", 120, True)
    assert controller.hold_delay == 3.5 and controller.hold_delay_ms == 3500
    assert controller.calls is calls


def test_controller_reconfigure_without_a_router_uses_the_registry_lookups():
    controller = RasController(RasSettings(), ev.EventBus(), Clock())
    bob = controller.registry.add(Endpoint("b_endp", (h323_id("bob"),), (("10.0.0.2", 1720),),
                                           ("10.0.0.2", 1719)))
    controller.reconfigure(RasConfig(RasSettings()))
    route = controller.router.route(RoutingRequest((h323_id("bob"),), None, (), None))
    assert route.endpoint is bob


def test_admission_reconfigure_keeps_calls_and_what_they_hold():
    registry, calls = Registry(), CallTable()
    admission = Admission(registry, calls, ev.EventBus(), Clock(),
                          AdmissionSettings(total_bandwidth=1000))
    assert admission.bandwidth.take(800)
    admission.reconfigure(AdmissionSettings("Other", total_bandwidth=500))
    assert admission.bandwidth.used == 800            # above the new limit, still held
    assert not admission.bandwidth.take(1)
    admission.bandwidth.give_back(800)
    assert admission.bandwidth.take(500) and not admission.bandwidth.take(1)
    assert admission.settings.gatekeeper_id == "Other"


def test_bandwidth_pool_reconfigure_changes_the_limit_only():
    pool = BandwidthPool(100)
    assert pool.take(80)
    pool.reconfigure(None)
    assert pool.used == 80 and pool.available is None and pool.take(10_000)
    pool.reconfigure(50)
    assert pool.available == 0 and not pool.can_take(1)


def test_registration_reconfigure_replaces_its_settings():
    registry = Registry()
    registration = Registration(registry, ev.EventBus(), Clock(), lambda endpoint: None)
    new = dataclasses.replace(registration.settings, time_to_live=77)
    registration.reconfigure(new)
    assert registration.grant_time_to_live(None) == 77


def test_registry_reconfigure_reindexes_prefixes_and_keeps_registrations():
    registry = Registry("_a", configured_prefixes={"GW1": ("02",)})
    gateway = registry.add(Endpoint(registry.new_endpoint_id(), (h323_id("GW1"),),
                                    (("10.0.0.9", 1720),), ("10.0.0.9", 1719), "gateway"))
    assert registry.longest_prefix("0712") is None
    registry.reconfigure(RegistrySettings("_b", {"GW1": ("07",)}))
    assert registry.longest_prefix("0712") == (gateway, "07")
    assert registry.longest_prefix("0212") is None
    assert gateway.endpoint_id.endswith("_a") and registry.get(gateway.endpoint_id) is gateway
    assert registry.new_endpoint_id().endswith("_b")


def test_virtual_queues_reconfigure_keeps_waiting_requests_and_their_timers():
    clock, bus = Clock(), ev.EventBus()
    queues = VirtualQueues(VirtualQueueSettings(aliases=("800",), request_timeout=10),
                           bus, clock, Registry())
    waiting = queues.hold(RoutingRequest((h323_id("800"),), None, (), None, call_reference=5),
                          "800")
    answers = []
    waiting.addCallback(answers.append)
    clock.advance(6)
    queues.reconfigure(VirtualQueueSettings(aliases=("900",), request_timeout=60))
    assert len(queues.pending) == 1
    clock.advance(4)                                   # the first timeout, not the new one
    assert answers == [None] and not queues.pending
    assert queues.match((h323_id("900"),)) == "900" and queues.match((h323_id("800"),)) is None
