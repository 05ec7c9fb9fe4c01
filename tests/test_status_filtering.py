"""[GkStatus::Filtering] and each session's include/exclude lists (GnuGk's rules)."""

from __future__ import annotations

import pytest

from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.status.filtering import FilterSettings, StatusFilters, parse_filtering

RCF = "RCF|10.0.0.1:1720|800:dialedDigits|terminal|1_endp;"
ARQ_LINE = "ACF|10.0.0.1:1720|1_endp|5|bob:h323_ID|alice:h323_ID|false|00-01|Direct;"
SCR = "SCR|gatekeeper-monitoring-check;"


def test_parse_reads_every_gnugk_key_and_repeated_filters():
    ini = read_ini("[GkStatus::Filtering]\nEnable=1\nIncludeFilter=.+\nExcludeFilter=.RQ\n"
                   "ExcludeFilter=SCR\nNewRCFOnly=1\n", "gk.ini")
    settings, warnings = parse_filtering(ini)
    assert settings == FilterSettings(True, (".+",), (".RQ", "SCR"), True)
    assert warnings == []


def test_parse_without_the_section_gives_defaults():
    assert parse_filtering(read_ini("[Gatekeeper::Main]\nName=GK\n")) == (FilterSettings(), [])


def test_a_bad_regular_expression_names_section_key_and_value():
    ini = read_ini("[GkStatus::Filtering]\nIncludeFilter=(unclosed\n", "gk.ini")
    with pytest.raises(ConfigError) as caught:
        parse_filtering(ini)
    error = caught.value
    assert (error.path, error.section, error.key, error.value) == (
        "gk.ini", "GkStatus::Filtering", "IncludeFilter", "(unclosed")
    assert "regular expression" in error.problem


def test_a_bad_boolean_is_refused_and_unknown_keys_warn():
    with pytest.raises(ConfigError):
        parse_filtering(read_ini("[GkStatus::Filtering]\nEnable=maybe\n"))
    _, warnings = parse_filtering(read_ini("[GkStatus::Filtering]\nColour=red\n", "gk.ini"))
    assert warnings == ["gk.ini: [GkStatus::Filtering] Colour: unknown key, ignored"]


def test_gnugk_manual_example_shows_all_but_requests():
    filters = StatusFilters.from_settings(FilterSettings(True, (".+",), (".RQ",)))
    assert filters.enabled
    assert filters.accepts(RCF)
    assert filters.accepts(ARQ_LINE)          # no "?RQ" in it
    assert not filters.accepts("URQ|10.0.0.1:1719|1_endp|maintenance;")
    assert not filters.accepts("IRQ|10.0.0.1:1719|1_endp;")


def test_exclude_wins_over_include():
    filters = StatusFilters(True, include=["RCF", "SCR"], exclude=["monitoring"])
    assert filters.accepts(RCF)
    assert not filters.accepts(SCR)


def test_with_no_include_filter_nothing_is_accepted():
    filters = StatusFilters(True, include=[], exclude=["URQ"])
    assert not filters.accepts(RCF)
    assert not filters.accepts("")


def test_expressions_match_anywhere_in_the_line():
    filters = StatusFilters(True, include=["800:dialed"])
    assert filters.accepts(RCF)
    assert not StatusFilters(True, include=["^800"]).accepts(RCF)


def test_add_and_remove_by_index_and_bad_input():
    filters = StatusFilters()
    filters.add_include("a")
    filters.add_include("b")
    filters.add_exclude("c")
    filters.remove_include(0)
    assert filters.include == ["b"] and filters.exclude == ["c"]
    with pytest.raises(IndexError):
        filters.remove_exclude(1)
    with pytest.raises(ValueError):
        filters.add_exclude("[")
    assert filters.exclude == ["c"]


def test_delivery_rule_of_the_factory_contract():
    """The factory sends an event line when filters is None, disabled or accepting."""
    def delivered(filters, line):
        return filters is None or not filters.enabled or filters.accepts(line)

    assert delivered(None, RCF)
    off = StatusFilters(False, include=[], exclude=["RCF"])
    assert delivered(off, RCF)
    off.enabled = True
    assert not delivered(off, RCF)


@pytest.mark.parametrize("new_only, expected", [("0", 2), ("1", 1)])
def test_new_rcf_only_drops_the_rcf_lines_of_keepalives(new_only, expected):
    from test_vqueue import Gatekeeper, Session, phone

    gk = Gatekeeper(f"[GkStatus::Filtering]\nNewRCFOnly={new_only}\n")
    watcher = Session(gk.service, 40001, trace=2)
    endpoint = phone(1, "1001")
    gk.register(endpoint)
    (keepalive,) = gk.send(endpoint, endpoint.rrq(keepalive=True))
    assert keepalive.kind == "registrationConfirm"
    assert [line for line in watcher.take() if line.startswith("RCF|")] == [
        f"RCF|10.0.0.1:1720|1001:dialedDigits|terminal|{endpoint.endpoint_id};"] * expected
