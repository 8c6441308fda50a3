"""HTTP simulators of the outside parties (DESIGN.md section 7), each with its state in a
PostgreSQL schema of its own and fault injection for tests:

- `provider`: the liquidity provider of seed 004 (currency exchange quotes), schema
  `sandbox_provider`, its book of quotes and tokens in `provider_quotes`;
- `bank`: the EUR core-banking ledger, schema `sandbox_bank`, its accounts in `bank_ledger`;
- `chain`: USDC balances per network and address, schema `sandbox_chain`, its wallets in
  `chain_ledger`.

Each of the three is its sandbox's HTTP side, with `create_app(settings, ...) -> FastAPI`; nothing
connects before the app starts. The bank and chain share the booking rule (`ledger`) and its
routes (`ledger_routes`); all three share the wire conventions (`common`), the pool and schema
(`database`), the app skeleton (`app`) and fault injection (`faults`).
Run one with `python -m services.local.sandbox provider|bank|chain [--port N]`.
"""
