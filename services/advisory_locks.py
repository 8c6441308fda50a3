"""Every PostgreSQL advisory lock of the system, named in one place so that no two uses share a
key by accident. The keys are the values the system has always used: changing one would let an
old and a new process both think they hold it.

PostgreSQL has two key spaces that never meet: one bigint, and a pair of int4. The fixed keys
below are bigints; the locks per name further down derive theirs from text in SQL (`hashtext`,
`hashtextextended`), so they cannot be listed, only their statements.
"""

from __future__ import annotations

from typing import LiteralString

from projections.order_list.view import WRITES_LOCK

# ------------------------------------------------------------------ leaders
# Session locks, taken with pg_try_advisory_lock and held while the process runs: the one
# active instance holds it, a second waits as a standby.

RELAY = 7_031_001
"""The relay publishing the event store to Kafka (services/relay)."""
SWEEPER = 7_031_002
"""The expiry sweeper (services/sweeper)."""
ORDER_LIST_WRITER = 7_031_003
"""The `order_list` view's writer, the projector: a second one waits as a standby."""
ORDER_LIST_REBUILD = 7_031_005
"""`otc projections rebuild order-list`: one at a time (a second one is refused)."""

# ------------------------------------------------------------------ schema creation
# Held while creating tables (CREATE ... IF NOT EXISTS), so that processes which start together
# do not collide in PostgreSQL's catalog ("tuple concurrently updated").

EVENT_STORE_SCHEMA = 7_031_000
"""The event store's and the order list's tables (a session lock while the library creates
them) and the tailers' position tables (services/tailing.py, a transaction lock)."""
AUTH_SCHEMA = 0x4155_5448_4B45_5953  # "AUTHKEYS"
"""The `auth` schema of API keys."""
RESOURCES_SCHEMA = 0x5245_534F_5552_4345  # "RESOURCE"
"""The `resources` schema of customers, accounts and wallets."""
WEBHOOKS_SCHEMA = 0x5745_4248_4F4F_4B53  # "WEBHOOKS"
"""The `webhooks` schema of endpoints and deliveries."""
PARKED_MOVEMENTS_SCHEMA = 0x574F_524B_5041_524B  # "WORKPARK"
"""The workers' table of parked movements."""

# ------------------------------------------------------------------ shared and exclusive

ORDER_LIST_WRITES = WRITES_LOCK
"""Every write transaction of the `order_list` view holds it shared, from its first statement;
the rebuild's swap holds it exclusively, so the projector pauses while the rebuilt table is
caught up, compared and swapped in. Defined beside the view (projections/order_list/view.py),
which may not import services."""

# ------------------------------------------------------------------ one statement at a time

WEBHOOK_CLAIMS = 0x5745_4248_434C_4149  # "WEBHCLAI"
"""One claim of due webhook deliveries at a time: the per-order ordering rule and the in-flight
bounds are checked and claimed in one statement, which two claims at once would both pass."""

AUDIT_CHECKPOINTS = 0x4155_4449_5443_4B50  # "AUDITCKP"
"""One audit checkpoint written at a time (the projector's, or `otc audit checkpoint`): each is
chained to the one before it."""

# ------------------------------------------------------------------ a lock per name
# Transaction locks whose key PostgreSQL derives from text. They share the bigint space with
# the fixed keys above: a collision is possible in principle, and would only make two
# unrelated transactions wait for each other.

SANDBOX_SCHEMA: LiteralString = "SELECT pg_advisory_xact_lock(hashtext(%s))"
"""A sandbox's schema, by its name (`sandbox_bank`, ...), while it is created."""
WEBHOOK_ENDPOINTS_OF_CUSTOMER: LiteralString = (
    "SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 0))"
)
"""One customer's webhook endpoints, by customer id, while one is added (their number is
capped per customer)."""

# In the pair-of-int4 space, apart from everything above: (ledger, transfer reference).
SANDBOX_TRANSFER: LiteralString = "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"
"""One transfer reference of a sandbox ledger, taken before the rows it books: calls with the
same reference are serialised. Parameters: the ledger (below) and the reference."""
BANK_TRANSFERS = "sandbox_bank.transfers"
CHAIN_TRANSFERS = "sandbox_chain.transfers"
