"""Real concurrency for race tests: threads with a database connection each."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_concurrently(
    target: Callable[[], Any], n: int, *, timeout: float = 120
) -> tuple[list, list]:
    """Call ``target()`` from ``n`` threads released together by a barrier, each
    on its own connection (closed when it ends). Returns the results and the
    exceptions; fails the test if a thread hangs."""
    barrier = threading.Barrier(n)
    results: list = []
    errors: list = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait(timeout=30)
            value = target()
            with lock:
                results.append(value)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors
