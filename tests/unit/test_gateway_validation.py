"""Malformed input is 422 VALIDATION_ERROR listing everything wrong with it, each field in the
request's own spelling (never a union's internal tag); a sell without its `side` is told so."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.unit.test_gateway_errors import KEY, Desk, client_for, gateway


async def refused(path: str, body: object) -> dict[str, Any]:
    async for client in client_for(gateway()):
        response = await client.post(path, headers=KEY, json=body)

        assert response.status_code == httpx.codes.UNPROCESSABLE_ENTITY
        assert response.headers["content-type"] == "application/problem+json"
        problem: dict[str, Any] = response.json()
        assert problem["code"] == "VALIDATION_ERROR"
        return problem
    raise AssertionError("no client")


def fields(problem: dict[str, Any]) -> list[str | None]:
    return [error.get("field") for error in problem["errors"]]


async def test_a_sell_without_side_is_told_that_side_is_missing() -> None:
    body = {
        "sourceWalletId": str(uuid.uuid4()),
        "destinationAccountId": str(uuid.uuid4()),
        "sourceAmount": "250.000000",
    }

    problem = await refused("/otc-exchanges/quote", body)

    assert fields(problem) == ["side"]
    assert problem["field"] == "side"
    assert "sourceAccountId" not in problem["detail"]


async def test_every_error_is_listed_with_its_field_and_no_union_tag() -> None:
    body = {"side": "sell", "sourceWalletId": "not-a-uuid", "sourceAmount": "12,5"}

    problem = await refused("/otc-exchanges/quote", body)

    assert sorted(map(str, fields(problem))) == [
        "destinationAccountId",
        "sourceAmount",
        "sourceWalletId",
    ]
    assert problem["field"] in fields(problem)
    assert all(field in problem["detail"] for field in fields(problem) if field)
    assert "sell." not in problem["detail"]


@pytest.mark.parametrize("side", ["swap", 7, ["buy"]])
async def test_an_unknown_side_names_side(side: object) -> None:
    problem = await refused("/otc-exchanges/quote", {"side": side, "sourceAmount": "1.00"})

    assert fields(problem) == ["side"]


async def test_a_buy_may_omit_side_and_is_told_about_buy_fields() -> None:
    problem = await refused("/otc-exchanges/quote", {"sourceAmount": "1.00"})

    assert sorted(map(str, fields(problem))) == ["destinationWalletId", "sourceAccountId"]


async def test_a_body_that_is_not_an_object_is_an_error_of_the_request_as_a_whole() -> None:
    problem = await refused("/otc-exchanges/quote", [1, 2])

    assert fields(problem) == [None]
    assert "field" not in problem


async def test_a_body_that_cannot_be_read_is_400_malformed_body() -> None:
    async for client in client_for(gateway()):
        response = await client.post(
            "/otc-exchanges/quote",
            headers={**KEY, "content-type": "application/json"},
            content=b'{"sourceAmount": "\xff\xfe"}',
        )

        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "MALFORMED_BODY"


async def test_text_with_a_nul_character_is_refused_before_it_reaches_postgresql() -> None:
    order = uuid.uuid4()
    async for client in client_for(gateway(auth=Desk())):
        response = await client.post(
            f"/ops/otc-exchanges/{order}/reject", headers=KEY, json={"reason": "no\x00way"}
        )

        assert response.status_code == 422
        assert response.json()["field"] == "reason"
