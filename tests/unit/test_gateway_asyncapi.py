"""The gateway serves the AsyncAPI document beside its OpenAPI one, to anyone, as committed."""

from __future__ import annotations

import json

import httpx

from services.asyncapi import DOCUMENT
from services.gateway.app import create_app


async def get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.get(path)


async def test_the_asyncapi_document_is_served_as_committed() -> None:
    response = await get("/asyncapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(DOCUMENT.read_text(encoding="utf-8"))


async def test_it_is_not_an_operation_of_the_rest_api() -> None:
    response = await get("/openapi.json")

    assert "/asyncapi.json" not in response.json()["paths"]
