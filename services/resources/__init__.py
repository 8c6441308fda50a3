"""The customers, EUR fiat accounts and wallets that orders move money between.

`port` is what the engine and the gateway read through, `store` keeps them in PostgreSQL
(schema `resources`), `fake` keeps them in memory for unit tests, `cli` is `otc resources`.
"""
