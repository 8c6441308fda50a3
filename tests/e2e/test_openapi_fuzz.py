"""schemathesis against the running gateway's /openapi.json: generated requests, valid and
invalid, on every operation, the operators' routes with an operator's key and the others with a
customer's read+write key. No 5xx, and every response (status, content type, body, its error
code among the route's documented ones) as the schema documents it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import System

pytestmark = pytest.mark.e2e

OPS = "/ops/"
EXAMPLES = 40  # per operation and generation mode: about 1,300 requests in all
MINIMUM_REQUESTS = 1000
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def test_api_answers_every_generated_request_within_its_contract(system: System) -> None:
    schema = schemathesis.openapi.from_url(f"{system.base_url}/openapi.json", timeout=30)
    customer = {"x-api-key": system.demo.customers[0].write_key}
    operator = {"x-api-key": system.demo.operator_key}
    sent: Counter[str] = Counter()
    answered: Counter[tuple[str, int]] = Counter()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case[Any]) -> None:
                sent[f"{case.method} {case.path}"] += 1
                headers = operator if case.path.startswith(OPS) else customer
                response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
                answered[f"{case.method} {case.path}", response.status_code] += 1

            try:
                call()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid input to generate.
                assert mode is GenerationMode.NEGATIVE

    assert sum(sent.values()) >= MINIMUM_REQUESTS, dict(sent)
    ops = {operation for operation in sent if operation.split(" ")[1].startswith(OPS)}
    past_auth = {
        op for (op, status), _ in answered.items() if op in ops and status not in {401, 403}
    }
    assert past_auth == ops, (
        "an operators' route answered only 401 or 403: the operator key was not used"
    )
    print(report(sent, answered, ops))  # noqa: T201


def report(sent: Counter[str], answered: Counter[tuple[str, int]], ops: set[str]) -> str:
    statuses: Counter[int] = Counter()
    for (_, status), count in answered.items():
        statuses[status] += count
    by_ops = sum(sent[operation] for operation in ops)
    return (
        f"schemathesis: {sum(sent.values())} requests over {len(sent)} operations "
        f"({by_ops} on {len(ops)} operators' routes, with the operator key); statuses: "
        + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    )
