"""schemathesis against the running gateway's /openapi.json: generated requests, valid and
invalid, on every operation, with a read+write key. No 5xx, and every response (status, content
type, body) as the schema documents it."""

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
    headers = {"x-api-key": system.demo.customers[0].write_key}
    sent: Counter[str] = Counter()
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
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

            try:
                call()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid input to generate.
                assert mode is GenerationMode.NEGATIVE

    assert sum(sent.values()) >= MINIMUM_REQUESTS, dict(sent)
    print(f"schemathesis: {sum(sent.values())} requests over {len(sent)} operations")  # noqa: T201
