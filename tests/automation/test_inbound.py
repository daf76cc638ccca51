"""Inbound webhooks: a signed post becomes one outbox event; every refusal
(bad signature, unknown or inactive source, stale or future timestamp,
malformed body or key, oversize body, repeat) is a clear 4xx, counted on the
source, and writes no event; concurrent repeats make exactly one event."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import Client

from automation.models import AutomationEvent, InboundSource
from automation.services.inbound import IDEMPOTENCY_HEADER
from tests.automation.factories import INBOUND_SECRET, inbound_source, signed_post
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db

URL = "/api/v1/automation/inbound/{}/"


def post(source: str, body: bytes, headers: dict[str, str], client: Client | None = None):
    return (client or Client()).post(
        URL.format(source), data=body, content_type="application/json", headers=headers
    )


@pytest.fixture
def shop(inbound_secret, entities):
    return inbound_source(slug="shop")


def counters(source: InboundSource) -> dict[str, int]:
    source.refresh_from_db()
    return {"accepted": source.accepted, **{r: n for r, n in source.refusals().items() if n}}


def test_a_signed_post_becomes_one_pending_outbox_event_and_is_counted(shop, monkeypatch):
    # given: events are left in the outbox (nothing drains them here)
    from automation import events

    monkeypatch.setattr(events, "request_outbox_processing", lambda: None)
    body, headers = signed_post({"type": "order.paid", "data": {"amount": 120}}, key="evt-42")

    # when
    answer = post("shop", body, headers)

    # then
    assert answer.status_code == 202, answer.content
    event = AutomationEvent.objects.get()
    assert answer.json() == {
        "status": "accepted",
        "event": event.pk,
        "source": "shop",
        "idempotency_key": "evt-42",
    }
    assert event.entity == shop.entity and event.entity.model_label == "inbound:shop"
    assert event.trigger == "inbound" and event.object_pk == "evt-42"
    assert event.new_values == {"type": "order.paid", "data": {"amount": 120}}
    assert event.status == "pending" and event.old_values is None
    assert counters(shop) == {"accepted": 1}
    assert shop.last_accepted_at is not None and shop.last_refused_at is None


def _bad_signature(shop):
    body, headers = signed_post(secret="not-the-secret")
    return "shop", body, headers


def _missing_signature(shop):
    body, headers = signed_post()
    del headers["X-Bureau-Signature-256"]
    return "shop", body, headers


def _body_changed_after_signing(shop):
    _body, headers = signed_post({"amount": 1})
    return "shop", json.dumps({"amount": 1000}).encode(), headers


def _key_changed_after_signing(shop):
    # A captured post replayed under a fresh key: the key is signed too.
    body, headers = signed_post(key="evt-1")
    return "shop", body, {**headers, IDEMPOTENCY_HEADER: "evt-2"}


def _timestamp_changed_after_signing(shop):
    body, headers = signed_post(timestamp=int(time.time()) - 3600)
    return "shop", body, {**headers, "X-Bureau-Timestamp": str(int(time.time()))}


def _secret_not_set(shop, settings):
    settings.AUTOMATION_INBOUND_SECRET_SHOP = ""
    body, headers = signed_post(secret="")
    return "shop", body, headers


def _secret_not_listed(shop, settings):
    settings.AUTOMATION_INBOUND_SECRETS = []
    body, headers = signed_post()
    return "shop", body, headers


UNAUTHENTICATED_CASES = {
    "bad signature": _bad_signature,
    "missing signature": _missing_signature,
    "body changed after signing": _body_changed_after_signing,
    "key changed after signing": _key_changed_after_signing,
    "timestamp changed after signing": _timestamp_changed_after_signing,
}


@pytest.mark.parametrize("case", sorted(UNAUTHENTICATED_CASES))
def test_a_post_whose_signature_does_not_verify_is_a_401_counted_and_never_processed(shop, case):
    # given
    source, body, headers = UNAUTHENTICATED_CASES[case](shop)

    # when
    answer = post(source, body, headers)

    # then
    assert answer.status_code == 401, answer.content
    assert answer.json()["code"] == "automation.inbound_signature"
    assert answer["WWW-Authenticate"].startswith("Bureau-HMAC-SHA256")
    assert AutomationEvent.objects.count() == 0
    assert counters(shop) == {"accepted": 0, "signature": 1}
    assert shop.last_refusal == "signature"


@pytest.mark.parametrize("case", ["secret not set", "secret not listed"])
def test_a_source_without_a_usable_secret_refuses_every_post(shop, settings, case, caplog):
    # given
    make = _secret_not_set if case == "secret not set" else _secret_not_listed
    source, body, headers = make(shop, settings)

    # when
    with caplog.at_level(logging.WARNING, logger="automation.services.inbound"):
        answer = post(source, body, headers)

    # then: refused as any bad signature; the log names the setting, never a value
    assert answer.status_code == 401
    assert AutomationEvent.objects.count() == 0
    assert counters(shop) == {"accepted": 0, "signature": 1}
    assert "AUTOMATION_INBOUND_SECRET_SHOP" in caplog.text


def test_unknown_and_inactive_sources_answer_exactly_as_a_bad_signature(shop):
    # given: a second source, inactive, and a correctly signed post for each
    from automation.services import inbound_source_save

    inbound_source(slug="legacy")
    inbound_source_save(
        actor=None, source=InboundSource.objects.get(slug="legacy"), is_active=False
    )
    body, headers = signed_post()
    _body, bad_headers = signed_post(secret="wrong")

    # when
    bad_signature = post("shop", body, bad_headers)
    unknown = post("nosuchsource", body, headers)
    inactive = post("legacy", body, headers)

    # then: the three answers are the same; only the known sources count
    assert bad_signature.status_code == unknown.status_code == inactive.status_code == 401
    assert bad_signature.json() == unknown.json() == inactive.json()
    assert bad_signature["WWW-Authenticate"] == unknown["WWW-Authenticate"]
    assert AutomationEvent.objects.count() == 0
    assert counters(shop) == {"accepted": 0, "signature": 1}
    assert counters(InboundSource.objects.get(slug="legacy")) == {"accepted": 0, "inactive": 1}


@pytest.mark.parametrize(
    "offset, accepted", [(-301, False), (301, False), (-299, True), (299, True)]
)
def test_the_timestamp_must_be_within_the_tolerance_either_way(shop, offset, accepted):
    # given: a post signed `offset` seconds from now (tolerance: 300 s by default)
    body, headers = signed_post(timestamp=int(time.time()) + offset)

    # when
    answer = post("shop", body, headers)

    # then
    if accepted:
        assert answer.status_code == 202, answer.content
        assert AutomationEvent.objects.count() == 1
    else:
        assert answer.status_code == 401
        assert answer.json()["code"] == "automation.inbound_timestamp"
        side = "ahead of" if offset > 0 else "behind"
        assert f"{abs(offset)} s {side} the server's clock" in answer.json()["detail"]
        assert AutomationEvent.objects.count() == 0
        assert counters(shop) == {"accepted": 0, "timestamp": 1}


def test_the_tolerance_is_a_setting(shop, settings):
    # given
    settings.AUTOMATION_INBOUND_TOLERANCE_SECONDS = 10
    body, headers = signed_post(timestamp=int(time.time()) - 30)

    # when
    answer = post("shop", body, headers)

    # then
    assert answer.status_code == 401 and "at most 10 s" in answer.json()["detail"]
    assert counters(shop) == {"accepted": 0, "timestamp": 1}


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1e9", ""])
def test_a_signed_timestamp_that_is_not_unix_seconds_is_refused(shop, timestamp):
    # given: signed correctly, over a timestamp that is not Unix seconds
    body, headers = signed_post(timestamp=timestamp)

    # when
    answer = post("shop", body, headers)

    # then
    assert answer.status_code == 401
    assert answer.json()["code"] == "automation.inbound_timestamp"
    assert counters(shop) == {"accepted": 0, "timestamp": 1}


BAD_BODIES = {
    "not json": b"{not json",
    "empty": b"",
    "an array": b"[1, 2]",
    "a string": b'"paid"',
    "NaN": b'{"amount": NaN}',
    "infinite number": b'{"amount": 1e999}',
    "NUL in a value": b'{"note": "a\\u0000b"}',
    "NUL in a key": b'{"a\\u0000": 1}',
    "lone surrogate": b'{"note": "\\ud800"}',
    "not UTF-8": b'{"note": "\xff\xfe"}',
    "too deep": b"[" * 5000 + b"]" * 5000,
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_a_signed_body_that_is_not_a_storable_json_object_is_a_400(shop, case):
    # given
    body, headers = signed_post(body=BAD_BODIES[case])

    # when
    answer = post("shop", body, headers)

    # then
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "automation.inbound_body"
    assert AutomationEvent.objects.count() == 0
    assert counters(shop) == {"accepted": 0, "body": 1}


@pytest.mark.parametrize("key", [None, "", "has space", "x" * 101, "naïve"])
def test_a_missing_or_malformed_idempotency_key_is_a_400(shop, key):
    # given: signed over that key (so the signature verifies)
    body, headers = signed_post(key=key)

    # when
    answer = post("shop", body, headers)

    # then
    assert answer.status_code == 400, answer.content
    assert IDEMPOTENCY_HEADER in answer.json()["detail"]
    assert AutomationEvent.objects.count() == 0
    assert counters(shop) == {"accepted": 0, "body": 1}


def test_a_body_over_the_limit_is_a_413_before_anything_else(shop, settings):
    # given: a 1 KiB limit and a 2 KiB post, signed or not
    settings.AUTOMATION_INBOUND_MAX_BYTES = 1024
    body, headers = signed_post({"blob": "x" * 2048})

    # when
    answer = post("shop", body, headers)
    unknown = post("nosuchsource", body, headers)

    # then: the same answer whether the source exists or not
    assert answer.status_code == unknown.status_code == 413
    assert answer.json() == unknown.json()
    assert answer.json()["code"] == "automation.inbound_too_large"
    assert AutomationEvent.objects.count() == 0
    assert counters(shop) == {"accepted": 0, "too_large": 1}


def test_a_repeated_key_is_a_409_naming_the_first_event_and_is_never_processed_again(shop):
    # given: a post accepted
    body, headers = signed_post({"amount": 1}, key="evt-7")
    first = post("shop", body, headers)
    assert first.status_code == 202

    # when: the same post again, and another body under the same key (both freshly signed)
    again = post("shop", *signed_post({"amount": 1}, key="evt-7"))
    other = post("shop", *signed_post({"amount": 999}, key="evt-7"))

    # then
    for answer in (again, other):
        assert answer.status_code == 409
        assert answer.json()["code"] == "automation.inbound_repeat"
        assert answer.json()["event"] == first.json()["event"]
    event = AutomationEvent.objects.get()
    assert event.new_values == {"amount": 1}
    assert counters(shop) == {"accepted": 1, "repeat": 2}


def test_the_same_key_from_two_sources_is_two_events(shop):
    # given
    inbound_source(slug="crm")

    # when
    shop_answer = post("shop", *signed_post(key="evt-1"))
    crm_answer = post("crm", *signed_post(key="evt-1"))

    # then
    assert shop_answer.status_code == crm_answer.status_code == 202
    assert AutomationEvent.objects.count() == 2


def test_no_answer_or_log_line_carries_the_secret(shop, settings, caplog):
    # given: one post of each kind
    settings.AUTOMATION_INBOUND_MAX_BYTES = 4096
    posts = [
        ("shop", *signed_post()),
        ("shop", *signed_post()),
        ("shop", *signed_post(secret="wrong")),
        ("nosuchsource", *signed_post()),
        ("shop", *signed_post(timestamp=1)),
        ("shop", *signed_post(body=b"[]")),
        ("shop", *signed_post({"x": "y" * 5000})),
    ]

    # when
    with caplog.at_level(logging.DEBUG):
        answers = [post(source, body, headers) for source, body, headers in posts]

    # then
    assert [a.status_code for a in answers] == [202, 409, 401, 401, 401, 400, 413]
    for answer in answers:
        assert INBOUND_SECRET not in answer.content.decode()
    assert INBOUND_SECRET not in caplog.text
    assert "inbound post to shop refused: repeat (409)" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_make_exactly_one_event(shop):
    # given: eight senders with the same signed post, on their own connections
    body, headers = signed_post({"amount": 5}, key="evt-race")

    # when: they post at once
    results, errors = run_concurrently(lambda: post("shop", body, headers), n=8)

    # then: one accepted; the others are told which event it became
    assert errors == []
    statuses = sorted(r.status_code for r in results)
    assert statuses == [202] + [409] * 7
    event = AutomationEvent.objects.get()
    assert {r.json()["event"] for r in results} == {event.pk}
    assert counters(shop) == {"accepted": 1, "repeat": 7}
