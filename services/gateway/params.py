"""The parameters routes share (an order's id, `?page` and `?limit`) and the body of a list:
`{"data": [...], "page", "limit", "total"}`, newest first unless a route says otherwise."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Path, Query

OrderId = Annotated[UUID, Path(description="the order id (equal to the quote id)")]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")]
Limit = Annotated[int, Query(ge=1, le=100, description="items per page, 1..100")]


def page_of(items: list[Any], page: int, limit: int, total: int) -> dict[str, Any]:
    return {"data": items, "page": page, "limit": limit, "total": total}
