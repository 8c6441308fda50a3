"""HTTP simulators of the outside parties (DESIGN.md section 7), each with its state in a
PostgreSQL schema of its own and fault injection for tests:

- `provider`: the liquidity provider of seed 004 (currency exchange quotes), schema
  `sandbox_provider`;
- `bank`: the EUR core-banking ledger, schema `sandbox_bank`;
- `chain`: USDC balances per network and address, schema `sandbox_chain`.

Each module has `create_app(settings, ...) -> FastAPI`; nothing connects before the app starts.
Run one with `python -m services.local.sandbox provider|bank|chain [--port N]`.
"""
