"""GK, Debug cfg/set/remove, PrintCallInfo, the filter commands, route answers,
and the finer points of command lookup, over StringTransport with exact bytes."""

from __future__ import annotations

import time

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper.config import parse, read_ini
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.status.filtering import StatusFilters
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint
from gatekeeper.h225.ras import Alias

INI = "[Gatekeeper::Main]\nName=GK\nTimeToLive=300\n[RoutedMode]\nGKRouted=1\n"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def gk():
    clock = Clock()
    clock.advance(1_795_702_393)   # Thu, 26 Nov 2026 14:13:13 GMT
    service = GatekeeperService(RasSettings(gatekeeper_id="GK"), ListenSettings(), clock,
                                parse(read_ini(INI, "gk.ini")))
    service.start_time = clock.seconds()
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    return service


class Client:
    def __init__(self, factory, port=40000):
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
        self.session = factory.buildProtocol(None)
        self.session.makeConnection(self.transport)
        self.take()

    def take(self) -> bytes:
        clock = self.session.factory.clock
        for _ in range(10_000):
            if not clock.getDelayedCalls():
                break
            clock.advance(0)
        data = self.transport.value()
        self.transport.clear()
        return data

    def say(self, line: bytes) -> bytes:
        self.take()
        self.session.dataReceived(line)
        return self.take()


def register(gk, endpoint):
    gk.ras_protocol.datagramReceived(endpoint.rrq(), endpoint.ras_address)
    endpoint.read(gk.ras_protocol.transport.take()[0][0])


def call_between(gk, caller, callee):
    gk.ras_protocol.datagramReceived(caller.arq([callee.aliases[-1]]), caller.ras_address)
    caller.read(gk.ras_protocol.transport.take()[0][0])
    call_id = list(caller.calls)[-1]
    gk.ras_protocol.datagramReceived(callee.arq(answer_call=True, call_id=call_id),
                                     callee.ras_address)
    callee.read(gk.ras_protocol.transport.take()[0][0])
    return call_id


# -- GK -------------------------------------------------------------------------


def test_gk_answers_as_gnugk_does_without_a_parent(gk):
    client = Client(gk.status)
    assert client.say(b"gk\r\n") == b"not registered\t\r\n;\r\n"
    assert client.say(b"GK extra\n") == b"not registered\t\r\n;\r\n"


# -- lookup ---------------------------------------------------------------------


def test_unknown_command_repeats_the_whole_line(gk):
    client = Client(gk.status)
    assert client.say(b"tr 1\r\n") == b"Error: Unknown command 'tr 1'\r\n"
    assert client.say(b"   \n") == b"Error: Unknown command '   '\r\n"
    assert client.say(b"\n") == b""


def test_a_prefix_of_two_names_of_one_command_is_ambiguous_as_in_gnugk(gk):
    client = Client(gk.status)
    assert client.say(b"maint\n") == b"Error: Unknown command 'maint'\r\n"
    assert client.say(b"stat\n").startswith(b"-- Endpoint Statistics --\r\n")
    assert client.say(b"printallcach\n") == b"AllCached\r\nNumber of Endpoints: 0\r\n;\r\n"


def test_disconnect_call_reads_a_non_number_as_zero(gk):
    client = Client(gk.status)
    assert client.say(b"disconnectcall abc\n") == b"Can't find call number 0\r\n"


def test_yell_repeats_the_line_as_typed(gk):
    client = Client(gk.status, 47548)
    number = client.session.number
    assert client.say(b"Yell  Hi   all\n") == (
        f"  {number}\t127.0.0.1:47548=>127.0.0.1:7000\t: Yell  Hi   all\r\n".encode())


def test_statistics_has_the_newer_trailing_fields(gk):
    client = Client(gk.status)
    lines = client.say(b"s\n").split(b"\r\n")
    assert lines[4] == b"Current Calls: 0 Active: 0 From Neighbor: 0 From Parent: 0 Proxied: 0"
    assert lines[5] == (b"Total Calls: 0 Successful: 0 From Neighbor: 0 From Parent: 0 "
                        b"Proxied: 0 Peak: 0 at Thu, 26 Nov 2026 14:13:13 GMT")


# -- Debug ----------------------------------------------------------------------


def test_debug_without_options_lists_them(gk):
    client = Client(gk.status)
    reply = client.say(b"debug\n")
    assert reply.startswith(b"Debug options:\r\n  trc [+|-|n]       Show/modify trace level")
    assert reply.endswith(b"  printrm VERBOSE   Print all removed endpoint records\r\n")
    assert reply.count(b"\r\n") == 8
    assert client.say(b"debug frobnicate\n") == b"Unknown debug command!\r\n"
    assert client.say(b"debug set RoutedMode\n") == b"Unknown debug command!\r\n"


def test_debug_trc_reads_words_as_gnugk(gk):
    client = Client(gk.status)
    assert client.say(b"debug trc abc\n") == b"Trace Level is now 0\r\n"
    assert client.say(b"debug trc -\n") == b"Trace Level is now 0\r\n"
    assert client.say(b"debug trc 7x\n") == b"Trace Level is now 7\r\n"


def test_debug_cfg_reads_the_running_configuration(gk):
    client = Client(gk.status)
    assert client.say(b"debug cfg\n") == (b"Config sections\r\n[Gatekeeper::Main]\r\n"
                                          b"[RoutedMode]\r\n;\r\n")
    assert client.say(b"debug cfg Gatekeeper::Main TimeToLive\n") == b"300\r\n;\r\n"
    assert client.say(b"debug cfg gatekeeper::main name\n") == b"GK\r\n;\r\n"
    assert client.say(b"debug cfg NoSuchSection NoKey\n") == b"\r\n;\r\n"
    assert client.say(b"debug cfg RoutedMode\n") == b"Section [RoutedMode]\r\nGKRouted=1\r\n;\r\n"


def test_debug_set_changes_the_running_configuration(gk):
    client = Client(gk.status)
    assert client.say(b"debug set Gatekeeper::Main TimeToLive 600\n") == b"600\r\n"
    assert gk.config.main.time_to_live == 600
    assert gk.settings.time_to_live == 600
    assert client.say(b"debug cfg Gatekeeper::Main TimeToLive\n") == b"600\r\n;\r\n"
    # a value with spaces is put back together
    assert client.say(b"debug set Extra::Section Note two  words\n") == b"two words\r\n"


def test_debug_set_with_a_bad_value_changes_nothing_and_says_why(gk):
    client = Client(gk.status)
    reply = client.say(b"debug set Gatekeeper::Main TimeToLive soon\n")
    assert reply.startswith(b"Error: gk.ini: [Gatekeeper::Main] TimeToLive=soon: ")
    assert reply.endswith(b"\r\n") and reply.count(b"\r\n") == 1
    assert gk.config.main.time_to_live == 300
    assert client.say(b"debug cfg Gatekeeper::Main TimeToLive\n") == b"300\r\n;\r\n"


def test_debug_remove_a_key_and_a_section(gk):
    client = Client(gk.status)
    assert client.say(b"debug remove Gatekeeper::Main TimeToLive\n") == (
        b"Remove TimeToLive in section Gatekeeper::Main\r\n")
    assert gk.config.main.time_to_live is None
    assert client.say(b"debug remove RoutedMode\n") == b"Remove section RoutedMode\r\n"
    assert "RoutedMode" not in gk.config.ini.sections
    assert client.say(b"debug remove\n") == b"Syntax Error: debug remove SEC [PAR]\r\n"


def test_debug_edit_failure_is_reported(gk):
    gk.edit_config = lambda ini: (False, "nope")
    client = Client(gk.status)
    assert client.say(b"debug remove RoutedMode\n") == b"Error: nope\r\n"


# -- PrintCallInfo --------------------------------------------------------------


def test_print_call_info_by_dashed_spaced_or_bare_call_id(gk):
    client = Client(gk.status)
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    register(gk, alice)
    register(gk, bob)
    call_id = call_between(gk, alice, bob)
    gk.clock.advance(42)
    dashed = "-".join(f"{b:02x}" for b in call_id)
    call = gk.calls.find_call_id(call_id)

    def vendor(endpoint):
        v = gk.registry.get(endpoint.endpoint_id).vendor
        return f"{v.product} {v.version}" if v and (v.product or v.version) else "unknown"

    expected = "\r\n".join([
        "CallInfo",
        f"CallID: {dashed}",
        "Status: Connected",
        "CallType: Audio",
        "MediaRouting: Direct",
        "SetupTime: Thu, 26 Nov 2026 14:13:13 GMT",
        "ConnectTime: Thu, 26 Nov 2026 14:13:13 GMT",
        "Duration: 42 sec ",
        "CallerIP: 10.0.0.1:1720",
        "CalledIP: 10.0.0.2:1720",
        "CallerAlias: alice",
        "CalledAlias: bob",
        "DialedNumber: bob",
        "CallingPartyNumberIE: ",
        "CalledPartyNumberIE: ",
        f"CallerVendor: {vendor(alice)}",
        f"CalledVendor: {vendor(bob)}",
        f"GrantedBandwidth: {call.bandwidth // 10} kbps",
        "Encryption: Off",
        "AudioCodecCaller: ",
        "AudioCodecCalled: ",
        "AudioBitrateCaller: 0 kbps",
        "AudioBitrateCalled: 0 kbps",
        ";", ""]).encode()
    assert client.say(f"pci {dashed}\n".encode()) == expected
    spaced = " ".join(f"{b:02x}" for b in call_id)
    assert client.say(f"PrintCallInfo {spaced}\n".encode()) == expected
    assert client.say(f"printcallinfo {call_id.hex().upper()}\n".encode()) == expected


def test_print_call_info_for_an_unknown_call_and_without_an_id(gk):
    client = Client(gk.status)
    assert client.say(b"printcallinfo 999\n") == (
        b"CallInfo\r\nError: no call with call ID 999\r\n;\r\n")
    assert client.say(b"pci\n") == b"Syntax Error: PrintCallInfo|pci CALL-ID\r\n"


def test_disconnect_call_id(gk):
    client = Client(gk.status)
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    register(gk, alice)
    register(gk, bob)
    call_id = call_between(gk, alice, bob)
    number = gk.calls.find_call_id(call_id).number
    reply = client.say(f"dcid {'-'.join(f'{b:02x}' for b in call_id)}\n".encode())
    assert reply.endswith(f"Call number {number} disconnected.\r\n".encode())
    assert len(gk.calls) == 0
    assert client.say(b"dcid 00\n") == b"Can't find call ID 00\r\n"


# -- filters --------------------------------------------------------------------


def test_filter_commands_answer_as_gnugk(gk):
    client = Client(gk.status)
    assert getattr(client.session, "filters", None) is None   # until a filter command
    assert client.say(b"printincludefilters\n") == b"No Filters are defined\r\n"
    assert isinstance(client.session.filters, StatusFilters)
    assert client.say(b"addincludefilter .+\n") == b"IncludeFilter added\r\n"
    assert client.say(b"AddExcludeFilter .RQ\n") == b"ExcludeFilter added\r\n"
    assert client.say(b"addexcludefilter SCR\n") == b"ExcludeFilter added\r\n"
    assert client.say(b"printexcludefilters\n") == b"Filter List:\r\n0) .RQ\r\n1) SCR\r\n;\r\n"
    assert client.say(b"filter\n") == b"Filtering is not active\r\n"
    assert client.say(b"filter 1\n") == b"Filtering is active\r\n"
    filters = client.session.filters
    assert filters.enabled
    assert filters.accepts("RCF|10.0.0.1:1720|a:h323_ID|terminal|1_endp;")
    assert not filters.accepts("URQ|10.0.0.1:1719|1_endp|maintenance;")
    assert client.say(b"removeexcludefilter 0\n") == b"ExcludeFilter removed\r\n"
    assert filters.accepts("URQ|10.0.0.1:1719|1_endp|maintenance;")
    assert client.say(b"removeexcludefilter 5\n") == b"Index mismatch.\r\n"
    assert client.say(b"removeincludefilter 0\n") == b"IncludeFilter removed\r\n"
    assert not filters.accepts("RCF|10.0.0.1:1720|a:h323_ID|terminal|1_endp;")
    assert client.say(b"filter 0\n") == b"Filtering is not active\r\n"
    assert not filters.enabled


def test_filter_commands_refuse_bad_input(gk):
    client = Client(gk.status)
    assert client.say(b"addincludefilter\n") == b"Syntax Error: addincludefilter REGEX\r\n"
    assert client.say(b"addexcludefilter a b\n") == b"Syntax Error: addexcludefilter REGEX\r\n"
    assert client.say(b"removeincludefilter x\n") == (
        b"Syntax Error: removeincludefilter FILTER_INDEX\r\n")
    assert client.say(b"removeexcludefilter\n") == (
        b"Syntax Error: removeexcludefilter FILTER_INDEX\r\n")
    assert client.say(b"filter 2\n") == b"Syntax Error: filter 0|1\r\n"
    assert client.say(b"addincludefilter (\n").startswith(b"Error: bad regular expression: ")
    assert client.session.filters.include == []


def test_filter_commands_start_from_the_factorys_filters(gk):
    gk.status.make_filters = lambda: StatusFilters(True, include=["RCF"])
    client = Client(gk.status)
    client.session.filters = None
    assert client.say(b"printincludefilters\n") == b"Filter List:\r\n0) RCF\r\n;\r\n"
    assert client.say(b"filter\n") == b"Filtering is active\r\n"


# -- route answers --------------------------------------------------------------


class Queues:
    """Stands in for the virtual queues' answer methods: records the values
    the commands parsed out of their words."""

    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def install(self, monkeypatch, queues):
        for name in ("route_to_alias", "route_to_gateway", "reject"):
            monkeypatch.setattr(queues, name, self._recorder(name))
        return self

    def _recorder(self, name):
        def record(*args):
            self.calls.append((name, args))
            return self.reply
        return record


CALL_ID = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_route_answers_are_silent_on_success_and_show_errors(gk, monkeypatch):
    client = Client(gk.status)
    queues = Queues(None).install(monkeypatch, gk.virtual_queues)
    assert client.say(b"rta Suzi endp_4711 1234\n") == b""
    assert client.say(b"RouteToGateway Suzi 192.168.0.50 endp_4711 1234 00-11-22-33-44-55-66-77-88-99-aa-bb-cc-dd-ee-ff\n") == b""
    assert client.say(b"RouteReject endp_4711 1234\n") == b""
    assert client.say(b"RouteReject endp_4711 1234 00-11-22-33-44-55-66-77-88-99-aa-bb-cc-dd-ee-ff 5\n") == b""
    assert client.say(b"rr endp_4711 1234 00112233445566778899aabbccddeeff calledPartyNotRegistered\n") == b""
    assert queues.calls == [
        ("route_to_alias", ("endp_4711", 1234, None, Alias("h323-ID", "Suzi"))),
        ("route_to_gateway", ("endp_4711", 1234, CALL_ID, Alias("h323-ID", "Suzi"),
                              ("192.168.0.50", 1720))),
        ("reject", ("endp_4711", 1234, None, None)),
        ("reject", ("endp_4711", 1234, CALL_ID, 5)),
        ("reject", ("endp_4711", 1234, CALL_ID, "calledPartyNotRegistered"))]
    queues.reply = "Error: no RouteRequest pending for endp_4711 1234"
    assert client.say(b"rr endp_4711 1234\n") == (
        b"Error: no RouteRequest pending for endp_4711 1234\r\n")


def test_route_answers_with_bad_words_say_which(gk, monkeypatch):
    client = Client(gk.status)
    queues = Queues(None).install(monkeypatch, gk.virtual_queues)
    assert client.say(b"rta Suzi endp_4711 12x4\n") == b"Error: CallRef 12x4 is not a number\r\n"
    assert client.say(b"rta Suzi endp_4711 1234 zz\n") == b"Error: zz is not a call identifier\r\n"
    assert client.say(b"rtg Suzi 300.1.1.1 endp_4711 1234\n").startswith(b"Error: ")
    assert queues.calls == []


def test_route_syntax_errors_use_gnugk_5_15_wording(gk, monkeypatch):
    client = Client(gk.status)
    queues = Queues(None).install(monkeypatch, gk.virtual_queues)
    assert client.say(b"routetoalias\n") == (
        b"Syntax Error: RouteToAlias TARGET_ALIAS CALLING_ENDPOINT_ID CRV "
        b"[CALLID [CALLER-ID [CALLER-DISPLAY-IE [CALLED-DISPLAY-IE]]]]\r\n")
    assert client.say(b"rr a\n") == b"Syntax Error: RouteReject CALLING_ENDPOINT_ID CRV [CALLID [REASON]]\r\n"
    assert queues.calls == []


# -- commands for features we lack ------------------------------------------------


@pytest.mark.parametrize("line, reply", [
    (b"makecall a b\n", b"Error: cannot call a: calledPartyNotRegistered\r\n"),
    (b"makecall a 10.0.0.1:0\n", b"Error: bad destination 10.0.0.1:0: port '0' is not 1-65535\r\n"),
    (b"makecall a b Reroute\n",
     b"Error: transfer method Reroute is not supported (FacilityForward is)\r\n"),
    (b"makecall\n", b"Syntax Error: MakeCall SOURCE DESTINATION [TRANSFER-METHOD]\r\n"),
    (b"getauthinfo\n", b"Syntax Error: GetAuthInfo|gai AUTH_MODULE_NAME\r\n"),
    (b"gci SqlAcct\n", b"Error: no accounting module SqlAcct\r\n"),
    (b"pccp\n", b"CurrentCallsPorts\r\nPort accounting is only active when notifications are "
                b"configured in [PortNotifications]\r\n;\r\n"),
    (b"pn\n", b"Neighbors\r\nNumber of Neighbors: 0\r\n;\r\n"),
    (b"rc\n", b"AllCached\r\nNumber of Endpoints: 0\r\n;\r\n"),
    (b"de 1_endp\n", b"No endpoint to disconnect!\r\n"),
    (b"setlog\n", b"Syntax Error: setlog <logfilepath>\r\n"),
    (b"reload AcctConfig\n", b"Syntax Error: Reload <AcctConfig|AuthConfig|CapConfig|EpConfig>\r\n"),
])
def test_other_commands_answer_clearly(gk, line, reply):
    assert Client(gk.status).say(line) == reply


def test_endpoint_qos_lists_every_endpoint(gk):
    client = Client(gk.status)
    register(gk, FakeEndpoint(["bob"], ("127.0.0.1", 1731), ("127.0.0.1", 34991)))
    assert client.say(b"printendpointqos\n") == (
        b"EndpointQoS\r\nQoS|bob:h323_ID|2026-11-26 T 14:13:13 Z|0|0.00%|0|0.00%|0\r\n"
        b"Number of Endpoints: 1\r\n;\r\n")
