from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.observability.ledger_totals import ledger_totals
from config.observability.readiness import forget_migration_state


@pytest.fixture
def metrics_from_localhost(settings):
    """/metrics open to the test client's address (127.0.0.1), no token."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def _fresh_ledger_totals():
    """/metrics keeps the totals of settled runs per process; each test's rows
    are rolled back afterwards."""
    ledger_totals.reset()
    yield
    ledger_totals.reset()


@pytest.fixture(autouse=True)
def _fresh_migration_state():
    """/readyz remembers per process that migrations were applied."""
    forget_migration_state()
    yield
    forget_migration_state()


class Scrape:
    """A parsed /metrics answer: ``scrape.value(sample_name, **labels)``."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float | None:
        for sample in self.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
        return None

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}


def scrape(client, **headers) -> Scrape:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.content.decode())
