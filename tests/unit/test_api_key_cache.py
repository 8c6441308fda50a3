"""The cache of verified API keys, on a fake store and a clock the tests move: what it answers
without the store, for how long, what it never keeps, and how much."""

from __future__ import annotations

import uuid

import pytest

from services.auth.key_cache import CachedApiKeys
from services.auth.keys import key_hash
from services.auth.principal import Principal, Scope

TTL = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Accepts the keys in `valid`; counts every lookup."""

    def __init__(self, *valid: str) -> None:
        self.valid = {key: principal(key) for key in valid}
        self.lookups = 0

    async def verify(self, plaintext: str) -> Principal | None:
        self.lookups += 1
        return self.valid.get(plaintext)


def principal(key: str) -> Principal:
    return Principal(uuid.uuid4(), frozenset({Scope.READ}), f"id-of-{key[:6]}", "api-key")


def key(n: int) -> str:
    return f"otc_{n:012d}_secret-part-of-the-key-{n}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_a_verified_key_is_answered_without_the_store_within_the_ttl(clock: Clock) -> None:
    store = CountingStore(key(1))
    cache = CachedApiKeys(store, ttl_seconds=TTL, clock=clock)

    first = await cache.verify(key(1))
    clock.now += TTL - 0.1
    again = await cache.verify(key(1))

    assert first is not None
    assert again == first
    assert store.lookups == 1


async def test_after_the_ttl_the_store_is_asked_again_and_a_revocation_shows(
    clock: Clock,
) -> None:
    store = CountingStore(key(1))
    cache = CachedApiKeys(store, ttl_seconds=TTL, clock=clock)
    await cache.verify(key(1))
    del store.valid[key(1)]  # revoked

    clock.now += TTL
    after = await cache.verify(key(1))

    assert after is None
    assert store.lookups == 2


async def test_a_refused_key_is_not_remembered(clock: Clock) -> None:
    store = CountingStore()
    cache = CachedApiKeys(store, ttl_seconds=TTL, clock=clock)

    answers = [await cache.verify(key(n)) for n in range(100)]
    answers.append(await cache.verify(key(0)))

    assert answers == [None] * 101
    assert store.lookups == 101
    assert len(cache) == 0


async def test_the_cache_holds_at_most_max_entries_dropping_the_least_recently_used(
    clock: Clock,
) -> None:
    store = CountingStore(key(1), key(2), key(3))
    cache = CachedApiKeys(store, ttl_seconds=TTL, max_entries=2, clock=clock)
    await cache.verify(key(1))
    await cache.verify(key(2))
    await cache.verify(key(1))  # key 2 is now the least recently used

    await cache.verify(key(3))
    lookups = store.lookups
    await cache.verify(key(1))
    await cache.verify(key(2))

    assert len(cache) == 2
    assert store.lookups == lookups + 1  # key 1 was kept, key 2 dropped


async def test_a_ttl_of_zero_asks_the_store_every_time(clock: Clock) -> None:
    store = CountingStore(key(1))
    cache = CachedApiKeys(store, ttl_seconds=0, clock=clock)

    await cache.verify(key(1))
    await cache.verify(key(1))

    assert store.lookups == 2
    assert len(cache) == 0


async def test_neither_the_plaintext_nor_the_stored_hash_is_kept(clock: Clock) -> None:
    plaintext = key(7)
    cache = CachedApiKeys(CountingStore(plaintext), ttl_seconds=TTL, clock=clock)
    await cache.verify(plaintext)

    held = repr(vars(cache))

    assert len(cache) == 1
    assert plaintext not in held
    assert repr(key_hash(plaintext)) not in held
