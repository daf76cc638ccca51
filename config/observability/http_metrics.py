"""HTTP request counters and latency histograms, per web process.

Under gunicorn there are several worker processes; a counter kept in one
process's memory would show only the requests that process served, and a
scrape lands on a random worker. So ``config/gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory per server start) before any
worker imports prometheus_client: each worker then writes its values to
files there, and ``/metrics`` sums them across all workers, dead ones
included, with ``MultiProcessCollector``. Without the variable (runserver,
tests) the values live in this process, which is then the whole server.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram

# Process-local registry: in multiprocess mode these objects still write to
# the shared files, and the exposition reads the files instead of this.
LOCAL_REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "bureau_http_requests",
    "HTTP requests answered, by view, method and status.",
    ["view", "method", "status"],
    registry=LOCAL_REGISTRY,
)
LATENCY = Histogram(
    "bureau_http_request_duration_seconds",
    "Time from the request entering Django's middleware to the response leaving it.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=LOCAL_REGISTRY,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def observe(*, view: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(view=view, method=method, status=str(status)).inc()
    LATENCY.labels(view=view, method=method).observe(seconds)


def collectors_into(registry: CollectorRegistry) -> None:
    """Add the HTTP metrics of the whole server to ``registry``."""
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(LOCAL_REGISTRY)
