"""Reading a metric of services/metrics.py in a test, without going through a registry."""

from __future__ import annotations

from typing import Any


def value_of(metric: Any, sample: str | None = None, **labels: str) -> float:  # noqa: ANN401
    """The value of one sample of `metric` (`otc_x_total`, `otc_x_count`, ... or the gauge's
    own), with exactly these labels; 0 when it has none yet."""
    for family in metric.collect():
        for found in family.samples:
            if (sample is None or found.name == sample) and found.labels == labels:
                return float(found.value)
    return 0.0
