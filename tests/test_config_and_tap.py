"""GnuGk-style configuration and the twistd options/service tree."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.python import usage

from gatekeeper import config, tap
from gatekeeper.h225 import ras
from gatekeeper.ras.protocol import DiscoveryProtocol, RasProtocol

SAMPLE = """\
# a GnuGk file
[Gatekeeper::Main]
Name=CfgGK
Home=127.0.0.1
TimeToLive=120
TotalBandwidth=100000
; another comment
EndpointIDSuffix=_cgk
UnicastRasPort=21719
UseMulticastListener=0

[RasSrv::GWPrefixes]
GW1=02,03:=5,!04

[RasSrv::PermanentEndpoints]
10.0.1.5=Citron;009,008
10.0.1.10:1721=700,bob

[RasSrv::RRQFeatures]
IRQPollCount=3
RequireDiscovery=1

[SomeFutureSection]
Key=1
"""


def test_gnugk_file_parses_into_typed_settings():
    parsed = config.parse(config.read_ini(SAMPLE, "gk.ini"))
    main = parsed.main
    assert (main.name, main.home, main.time_to_live, main.total_bandwidth) == (
        "CfgGK", "127.0.0.1", 120, 100000)
    assert main.endpoint_id_suffix == "_cgk" and main.ras_port == 21719
    assert main.use_multicast_listener is False
    assert parsed.gateway_prefixes == {"GW1": ("02", "03")}
    first, second = parsed.permanent_endpoints
    assert first.signal_address == ("10.0.1.5", 1720)
    assert first.aliases == (ras.h323_id("Citron"),)
    assert first.prefixes == ("009", "008") and first.endpoint_type == "gateway"
    assert second.signal_address == ("10.0.1.10", 1721)
    assert second.aliases == (ras.dialled_digits("700"), ras.h323_id("bob"))
    assert second.endpoint_type == "terminal"
    assert parsed.irq_poll_count == 3 and parsed.require_discovery is True


def test_unknown_sections_and_keys_are_warnings_not_errors():
    text = SAMPLE.replace("Name=CfgGK", "Name=CfgGK\nNoSuchKey=1")
    parsed = config.parse(config.read_ini(text, "gk.ini"))
    assert any("[SomeFutureSection]" in w for w in parsed.warnings)
    assert any("NoSuchKey" in w for w in parsed.warnings)


@pytest.mark.parametrize("text, section, key, value", [
    ("[Gatekeeper::Main]\nTimeToLive=abc\n", "Gatekeeper::Main", "TimeToLive", "abc"),
    ("[Gatekeeper::Main]\nHome=not-an-ip\n", "Gatekeeper::Main", "Home", "not-an-ip"),
    ("[Gatekeeper::Main]\nUnicastRasPort=70000\n", "Gatekeeper::Main", "UnicastRasPort", "70000"),
    ("[Gatekeeper::Main]\nUseMulticastListener=maybe\n", "Gatekeeper::Main",
     "UseMulticastListener", "maybe"),
    ("[RasSrv::GWPrefixes]\nGW=0x1\n", "RasSrv::GWPrefixes", "GW", "0x1"),
    ("[RasSrv::PermanentEndpoints]\nnowhere=alias\n", "RasSrv::PermanentEndpoints",
     "nowhere", "alias"),
    ("[GkStatus::Auth]\nrule=allow|nonsense\n", "GkStatus::Auth", "rule", "allow|nonsense"),
    ("[GkStatus::Auth]\n10.0.0.1=maybe\n", "GkStatus::Auth", "10.0.0.1", "maybe"),
    ("[Gatekeeper::Main]\nStatusTraceLevel=3\n", "Gatekeeper::Main", "StatusTraceLevel", "3"),
])
def test_bad_values_are_refused_naming_file_section_key_and_value(text, section, key, value):
    with pytest.raises(config.ConfigError) as info:
        config.parse(config.read_ini(text, "bad.ini"))
    message = str(info.value)
    assert "bad.ini" in message and f"[{section}]" in message and f"{key}={value}" in message


def test_a_line_that_is_not_a_setting_is_refused():
    with pytest.raises(config.ConfigError, match="expected key=value"):
        config.read_ini("[Gatekeeper::Main]\njust words\n", "x.ini")
    with pytest.raises(config.ConfigError, match="before any"):
        config.read_ini("Name=x\n", "x.ini")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.ini")


def test_postoptions_refuses_a_bad_file_before_anything_listens(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[Gatekeeper::Main]\nTimeToLive=soon\n")
    options = tap.Options()
    with pytest.raises(tap.ConfigRefused, match=r"bad.ini: \[Gatekeeper::Main\] TimeToLive=soon"):
        options.parseOptions(["--config", str(bad)])


def test_command_line_wins_over_the_file(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(SAMPLE)
    options = tap.Options()
    options.parseOptions(["--config", str(path), "--name", "CliGK", "--ttl", "600"])
    settings, listen = tap.make_settings(options)
    assert settings.gatekeeper_id == "CliGK" and settings.time_to_live == 600
    assert settings.total_bandwidth == 100000 and settings.irq_poll_count == 3
    assert settings.require_discovery is True
    assert (listen.interface, listen.ras_port, listen.discovery_port) == ("127.0.0.1", 21719, 0)


def test_defaults_without_a_file():
    options = tap.Options()
    options.parseOptions([])
    settings, listen = tap.make_settings(options)
    assert settings.gatekeeper_id == "gatekeeper" and settings.time_to_live is None
    assert (listen.interface, listen.ras_port, listen.discovery_port) == ("", 1719, 1718)
    assert (listen.status_port, listen.status_interface) == (7000, "127.0.0.1")


def test_service_tree_has_ras_and_discovery_and_permanent_endpoints(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text(SAMPLE.replace("UseMulticastListener=0", "UseMulticastListener=1"))
    options = tap.Options()
    options.parseOptions(["--config", str(path)])
    settings, listen = tap.make_settings(options)
    service = tap.GatekeeperService(settings, listen, Clock(), options.config)
    names = {child.name for child in service}
    assert names == {"ras", "discovery", "status"}
    status = service.getServiceNamed("status")
    assert status.args[0] == 7000 and status.kwargs["interface"] == "127.0.0.1"
    assert isinstance(service.getServiceNamed("ras").args[1], RasProtocol)
    assert isinstance(service.getServiceNamed("discovery").args[1], DiscoveryProtocol)
    service.add_permanent_endpoints()
    citron = service.registry.find_alias("Citron")
    assert citron is not None and citron.permanent and citron.endpoint_type == "gateway"
    assert service.registry.longest_prefix("0091234")[0] is citron
    assert service.registry.find_alias("700").signal_address == ("10.0.1.10", 1721)
    assert service.registry.configured_prefixes == {"GW1": ("02", "03")}


def test_the_sample_file_loads_without_warnings():
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "etc" / "gatekeeper.ini"
    parsed = config.load(sample)
    assert parsed.warnings == ()
    assert parsed.main == config.MainSettings()


def test_status_settings_reach_the_status_factory(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text("[Gatekeeper::Main]\nStatusTraceLevel=1\nMaxStatusClients=5\n"
                    "[GkStatus::Auth]\nrule=explicit\n10.0.0.1=allow\n")
    options = tap.Options()
    options.parseOptions(["--config", str(path)])
    settings, listen = tap.make_settings(options)
    service = tap.GatekeeperService(settings, listen, Clock(), options.config)
    assert service.status.default_trace_level == 1 and service.status.max_clients == 5
    assert service.status.auth.decide("10.0.0.1").value == "allow"
    assert service.status.auth.decide("127.0.0.1").value == "forbid"


def test_routed_mode_from_the_command_line_or_the_file_listens_for_call_signalling():
    options = tap.Options()
    options.parseOptions(["--routed", "--interface", "127.0.0.1", "--call-signal-port", "1730"])
    settings, listen = tap.make_settings(options)
    assert settings.routed and settings.signal_address == ("127.0.0.1", 1730)
    assert listen.call_signal_port == 1730
    with pytest.raises(usage.UsageError, match="--routed and --direct"):
        tap.Options().parseOptions(["--routed", "--direct"])
    parsed = config.parse(config.read_ini(
        "[RoutedMode]\nGKRouted=1\nH245Routed=0\nCallSignalPort=1721\nSignalTimeout=5000\n"
        "AcceptUnregisteredCalls=1\nAcceptNeighborsCalls=0\n", "gk.ini"))
    assert parsed.routed_mode.gk_routed and parsed.routed_mode.call_signal_port == 1721
    assert parsed.routed_mode.signal_timeout == 5.0
    assert parsed.routed_mode.accept_unregistered_calls is True
    assert parsed.routed_mode.accept_neighbors_calls is False
    assert parsed.warnings == ()
    with pytest.raises(config.ConfigError, match=r"\[RoutedMode\] AcceptUnregisteredCalls"):
        config.parse(config.read_ini("[RoutedMode]\nAcceptUnregisteredCalls=maybe\n", "gk.ini"))
    from_file = tap.Options()
    from_file.parseOptions([])
    settings, listen = tap.make_settings(from_file, parsed)
    assert settings.routed and listen.call_signal_port == 1721
    direct = tap.Options()
    direct.parseOptions(["--direct"])
    settings, listen = tap.make_settings(direct, parsed)      # --direct wins over the file
    assert not settings.routed and listen.call_signal_port == 0
    with pytest.raises(config.ConfigError, match=r"\[RoutedMode\] SignalTimeout=soon"):
        config.parse(config.read_ini("[RoutedMode]\nSignalTimeout=soon\n", "gk.ini"))


def test_status_filtering_section_reaches_new_sessions():
    parsed = config.parse(config.read_ini(
        "[GkStatus::Filtering]\nEnable=1\nIncludeFilter=^CDR\nExcludeFilter=secret\n", "gk.ini"))
    assert parsed.warnings == ()
    service = tap.GatekeeperService(tap.RasSettings(), tap.ListenSettings(status_port=0,
                                                                          discovery_port=0),
                                    Clock(), parsed)
    filters = service.status.make_filters()
    assert filters.enabled
    assert filters.accepts("CDR|1|x;") and not filters.accepts("RCF|x;")
    assert not filters.accepts("CDR|secret;")


def test_debug_set_edits_the_running_configuration_and_refuses_bad_values():
    service = tap.GatekeeperService(tap.RasSettings(), tap.ListenSettings(status_port=0,
                                                                          discovery_port=0),
                                    Clock(), config.parse(config.read_ini("", "gk.ini")))
    ini = service.config.ini.with_value("Gatekeeper::Main", "TimeToLive", "300")
    assert service.edit_config(ini) == (True, "")
    assert service.settings.time_to_live == 300
    assert service.config.ini.get("Gatekeeper::Main", "timetolive") == "300"
    ok, message = service.edit_config(ini.with_value("Gatekeeper::Main", "TimeToLive", "soon"))
    assert not ok and "[Gatekeeper::Main] TimeToLive=soon: not a whole number" in message
    assert service.settings.time_to_live == 300
    assert service.edit_config(service.config.ini.without("Gatekeeper::Main"))[0]
    assert service.settings.time_to_live is None


def test_manhole_option_needs_credentials_and_takes_them_from_the_file(tmp_path):
    options = tap.Options()
    with pytest.raises(tap.ConfigRefused, match=r"\[Manhole\] Enable=1 \(--manhole\): the manhole "
                                               "has no built-in credentials"):
        options.parseOptions(["--manhole"])
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from twisted.conch.ssh.keys import Key

    keys = tmp_path / "keys"
    public = Key(ed25519.Ed25519PrivateKey.generate()).public().toString("OPENSSH")
    keys.write_bytes(public + b" ops@example\n")
    path = tmp_path / "gk.ini"
    path.write_text(f"[Manhole]\nPort=0\nAuthorizedKeys={keys}\nHostKey={tmp_path / 'hk'}\n")
    options = tap.Options()
    options.parseOptions(["--config", str(path), "--manhole"])
    assert options.config.manhole.enabled and options.config.manhole.port == 0
    off = tap.Options()
    off.parseOptions(["--config", str(path)])
    assert not off.config.manhole.enabled
    service = tap.GatekeeperService(tap.RasSettings(), tap.ListenSettings(status_port=0,
                                                                          discovery_port=0),
                                    Clock(), options.config)
    assert service.manhole is not None and service.getServiceNamed("manhole") is service.manhole


def test_a_reload_turns_the_manhole_off_and_on(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from twisted.conch.ssh.keys import Key

    keys = tmp_path / "keys"
    keys.write_bytes(Key(ed25519.Ed25519PrivateKey.generate()).public().toString("OPENSSH")
                     + b"\n")
    on = config.parse(config.read_ini(
        f"[Manhole]\nEnable=1\nPort=0\nAuthorizedKeys={keys}\nHostKey={tmp_path / 'hk'}\n",
        "gk.ini"))
    off = config.parse(config.read_ini("", "gk.ini"))
    service = tap.GatekeeperService(tap.RasSettings(), tap.ListenSettings(status_port=0,
                                                                          discovery_port=0),
                                    Clock(), off)
    assert service.manhole is None
    service.apply(on, service.settings)
    assert service.getServiceNamed("manhole") is service.manhole
    service.apply(off, service.settings)
    assert service.manhole is None
    assert "manhole" not in [s.name for s in service]


def test_error_text_names_only_what_is_known(tmp_path):
    with pytest.raises(config.ConfigError) as raised:
        config.load(tmp_path / "missing.ini")
    assert str(raised.value).startswith(f"{tmp_path / 'missing.ini'}: cannot read the file")
    with pytest.raises(config.ConfigError) as raised:
        config.read_ini("[Main]\njunk\n", "gk.ini")
    assert str(raised.value) == "gk.ini: [Main] line 2: 'junk': expected key=value"
