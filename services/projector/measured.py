"""The order list's projection with the projector's own figures (services/metrics.py): events
applied by type, the time a page takes, the position reached. The projection itself stays in
projections/ (no metrics there: it is also what `otc projections rebuild` and the tests run)."""

from __future__ import annotations

import time

from eventsourcing.persistence import Tracking

from projections.order_list.projection import OrderListProjection, PageEvent
from services import metrics


class MeasuredOrderListProjection(OrderListProjection):
    name = OrderListProjection.name
    """eventsourcing names a projection after its class unless told (`__init_subclass__`), and
    the name picks the view's environment: without this the view is another one, at position 0."""

    def process_order_events(self, events: list[PageEvent], tracking: Tracking) -> None:
        started = time.perf_counter()
        super().process_order_events(events, tracking)
        metrics.PROJECTOR_APPLY.observe(time.perf_counter() - started)
        for event, _ in events:
            metrics.PROJECTED_EVENTS.labels(type(event).__name__).inc()
