"""The chaos campaign's verdict can fail: each kind of damage it looks for turns it red."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.chaos.campaign import Faults, Tally, verdict

ORDER = "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b21"
HEALTHY: dict[str, Any] = {
    "stored": {
        ORDER: Counter(
            {"Quoted": 1, "Confirmed": 1, "SourceDebited": 1, "Approved": 1, "PaidOut": 1}
        )
    },
    "statuses": {ORDER: "completed"},
    "reconciliation": {"mismatches": [], "movementsBooked": 2},
    "conserved": {"conserved": True},
}


def tally() -> Tally:
    found = Tally()
    found.acknowledged[ORDER] = {"quote", "confirm", "approve"}
    found.intents[ORDER] = "approve"
    return found


def judge(**changes: Any) -> bool:  # noqa: ANN401 - the verdict's inputs, changed one at a time
    facts = {**HEALTHY, **changes}
    return verdict(tally=facts.pop("tally", tally()), faults=Faults(), seconds=1.0, **facts).failed


def test_a_healthy_campaign_passes() -> None:
    assert not judge()


@pytest.mark.parametrize(
    "damage",
    [
        {"stored": {ORDER: Counter({"Quoted": 1, "Confirmed": 1})}},  # an approval lost
        {"stored": {ORDER: Counter({**HEALTHY["stored"][ORDER], "PaidOut": 2})}},  # paid twice
        {"statuses": {ORDER: "payout_pending"}},  # stuck
        {"statuses": {ORDER: "rejected"}},  # not what was asked
        {"statuses": {ORDER: "expired"}},  # an approved order may not simply lapse
        {
            "reconciliation": {
                "mismatches": [{"reference": "x", "problem": "2 payouts held"}],
                "movementsBooked": 3,
            }
        },
        {"conserved": {"conserved": False}},
    ],
)
def test_each_kind_of_damage_fails_the_campaign(damage: dict[str, Any]) -> None:
    assert judge(**damage)


def test_an_order_no_client_heard_of_fails_the_campaign() -> None:
    stored = {**HEALTHY["stored"], "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b22": Counter({"Quoted": 1})}

    assert judge(stored=stored)


def test_a_cancel_that_found_its_quote_expired_is_what_the_customer_asked() -> None:
    cancelled = Tally()
    cancelled.acknowledged[ORDER] = {"quote"}
    cancelled.intents[ORDER] = "cancel"

    assert not judge(
        tally=cancelled,
        stored={ORDER: Counter({"Quoted": 1, "Expired": 1})},
        statuses={ORDER: "expired"},
    )
