"""The event store reads a stored id into the very UUID `UUID(hex)` makes, faster; what UUID
refuses it refuses."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.persistence import UUIDAsHex
from hypothesis import given
from hypothesis import strategies as st

from services.engine.event_store import Orders, UUIDFromHex


@given(uuid=st.uuids())
def test_a_stored_id_reads_as_the_uuid_it_was(uuid: UUID) -> None:
    read = UUIDFromHex().decode(UUIDAsHex().encode(uuid))

    assert (read, hash(read), str(read), read.version) == (
        uuid,
        hash(uuid),
        str(uuid),
        uuid.version,
    )


@pytest.mark.parametrize("stored", ["-" + "0" * 30 + "1", "g" * 32, "abc", ""])
def test_what_uuid_refuses_is_refused(stored: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        UUID(stored)
    with pytest.raises(ValueError, match=r"."):
        UUIDFromHex().decode(stored)


def test_the_orders_application_reads_ids_this_way() -> None:
    orders = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    assert isinstance(orders.mapper.transcoder.names["uuid_hex"], UUIDFromHex)  # type: ignore[attr-defined]
