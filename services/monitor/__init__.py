"""The monitor process: what no single process can see, sampled for Prometheus (watch.py)."""
