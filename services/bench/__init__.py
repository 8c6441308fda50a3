"""Benchmarks, run by `otc bench engine|api|webhooks` (services/cli/bench.py): not tests, they
print figures. Each makes what it measures on the running stack and removes it afterwards,
except `api`, which drives the running system with its demo data."""
