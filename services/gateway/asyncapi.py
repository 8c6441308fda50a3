"""The AsyncAPI document of the Kafka topics, beside /openapi.json: `GET /asyncapi.json`.

It is services/asyncapi.py's document (the committed docs/asyncapi.json, which a test keeps
equal to it), made on the first request, in a worker thread, and kept.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

router = APIRouter()


@cache
def asyncapi_document() -> dict[str, Any]:
    # It builds every Kafka process's wiring on fakes: imported only when asked for.
    from services.asyncapi import document  # noqa: PLC0415

    return document()


@router.get("/asyncapi.json", include_in_schema=False)
def get_asyncapi_document() -> JSONResponse:
    return JSONResponse(asyncapi_document())
