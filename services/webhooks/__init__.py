"""Webhooks (Standard Webhooks, DESIGN.md sections 2 and 6): customers register endpoints, and
the dispatcher delivers every order event to them, signed, at least once, per order in version
order.

- `events`: which events a customer can receive, and the message (`{"type", "timestamp",
  "data"}`) each becomes: the public order view after the event.
- `signing`: endpoint secrets (`whsec_...`), the `webhook-*` headers, secrets sealed at rest.
- `ssrf`: which URLs may be endpoints and which addresses may be connected to.
- `schedule`: what an attempt's answer means: delivered, try again when, or give up.
- `store`: endpoints, events and deliveries in PostgreSQL (schema `webhooks`), and its fake.
- `endpoints`: the use cases of endpoint management (the gateway's routes and the CLI).
- `dispatcher`: order events from Kafka -> one delivery per matching endpoint.
- `sender`: due deliveries -> HTTP POSTs, bounded per endpoint and overall; `poster`: the POST
  itself, only where `ssrf` allows.
- `views`: the public order view at an event's version, from the event store.
- `__main__`: the dispatcher process; `local`: its settings in the local run.
- `receiver`: a local receiver (to try webhooks, for tests and the benchmark); `cli`: `otc
  webhooks`; `bench`: `otc bench webhooks`.
"""
