"""[RasSrv::RewriteE164]: dialled numbers rewritten before routing."""

from __future__ import annotations

import pytest

from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.core.rewrite import RewriteRule, parse_rewrite, rewrite_destination
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import dialled_digits, h323_id
from test_vqueue import Gatekeeper, phone


def test_prefix_is_replaced_and_the_rest_kept():
    assert RewriteRule("0049", "49").match("0049301234") == "49301234"
    assert RewriteRule("0049", "49").match("0033") is None
    assert RewriteRule("0049", "").match("00491") == "1"
    assert RewriteRule("0049", "49").match("004") is None


def test_dots_match_any_digit_and_carry_it_over():
    rule = RewriteRule("0..", "1..")
    assert rule.match("0712") == "1712"
    assert rule.match("0#12") is None
    assert RewriteRule("9.", "").match("9512") == "12"


def test_longest_rule_wins_and_only_digit_aliases_change():
    rules = parse_rewrite(read_ini("[RasSrv::RewriteE164]\n0=9\n0049=49\n"))
    assert [r.pattern for r in rules] == ["0049", "0"]
    aliases = (dialled_digits("00491"), h323_id("0049x"), dialled_digits("0123"),
               dialled_digits("555"))
    assert rewrite_destination(rules, aliases) == (
        dialled_digits("491"), h323_id("0049x"), dialled_digits("9123"), dialled_digits("555"))
    untouched = (dialled_digits("555"),)
    assert rewrite_destination(rules, untouched) is untouched


@pytest.mark.parametrize("line, problem", [
    ("00a=1", "the prefix may hold only"),
    ("00=1x", "the replacement may hold only"),
    ("0.=1..", "more . than the prefix"),
])
def test_bad_rules_are_refused_naming_key_and_value(line, problem):
    with pytest.raises(ConfigError) as raised:
        parse_rewrite(read_ini(f"[RasSrv::RewriteE164]\n{line}\n", "gk.ini"))
    key, value = line.split("=")
    assert (raised.value.section, raised.value.key, raised.value.value) == (
        "RasSrv::RewriteE164", key, value)
    assert problem in raised.value.problem


def test_arq_and_lrq_are_routed_by_the_rewritten_number():
    gk = Gatekeeper("[RasSrv::RewriteE164]\n0=49\n[RasSrv::LRQFeatures]\nAcceptNonNeighborLRQ=1\n")
    caller, target = phone(1, "1001"), phone(2, "49712")
    gk.register(caller)
    gk.register(target)
    (acf,) = gk.send(caller, caller.arq(["0712"]))
    assert acf.kind == "admissionConfirm"
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("10.0.0.2", 1720)
    (call,) = list(gk.service.calls)
    assert call.destination_info == (dialled_digits("49712"),)
    assert gk.of(ev.AdmissionConfirmed)[-1].destination == (dialled_digits("49712"),)
    (lcf,) = gk.send(phone(9), phone(9).lrq(["0712"]))
    assert lcf.kind == "locationConfirm"
