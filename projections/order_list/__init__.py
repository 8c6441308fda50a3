"""The `order_list` read model: one row per order, answering "which orders, in what state?"."""

from projections.order_list.projection import MissingEventsError, OrderListProjection, row_after
from projections.order_list.view import OrderListRow, OrderListView

__all__ = [
    "MissingEventsError",
    "OrderListProjection",
    "OrderListRow",
    "OrderListView",
    "row_after",
]
