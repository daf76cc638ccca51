import string

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from operations.sanitize import (
    MAX_FAILURES,
    MAX_MESSAGE_LENGTH,
    PLACEHOLDERS,
    normalize_code,
    sanitize_failures,
    sanitize_message,
)

TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"

secret_values = st.text(alphabet=TOKEN_ALPHABET, min_size=12, max_size=64)
hex_blobs = st.text(alphabet="0123456789abcdef", min_size=32, max_size=128)
base64_blobs = st.binary(min_size=24, max_size=96).map(
    lambda raw: __import__("base64").b64encode(raw).decode()
)
emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(alphabet=string.ascii_lowercase + string.digits + "._", min_size=3, max_size=20).filter(
        lambda s: s[0].isalnum()
    ),
    st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=15),
    st.sampled_from(["com", "co.kr", "org", "net", "io"]),
)

# How a secret shows up in a failure message: the planted forms we promise to catch.
FORMS = [
    "Authorization: Bearer {s}",
    "bearer {s}",
    "password={s}",
    "PASSWORD: {s}",
    "db_password='{s}'",
    'client_secret="{s}"',
    "token={s}",
    "access_token: {s}",
    "api_key={s}",
    "X-Api-Key: {s}",
    '{{"password": "{s}"}}',
    "https://svc:{s}@knox.example.com/approval",
    "?apikey={s}&x=1",
]

surrounding = st.text(max_size=200)


def _survives(secret: str, output: str) -> bool:
    return secret in output


@settings(max_examples=300, deadline=None)
@given(prefix=surrounding, suffix=surrounding, form=st.sampled_from(FORMS), secret=secret_values)
@example(prefix="", suffix="", form="password={s}", secret="hunter2hunter2")
def test_a_keyed_secret_planted_anywhere_never_survives(prefix, suffix, form, secret):
    assume(secret not in prefix and secret not in suffix)
    assume(not any(secret in placeholder for placeholder in PLACEHOLDERS))

    output = sanitize_message(prefix + form.format(s=secret) + suffix)

    assert not _survives(secret, output)


@settings(max_examples=200, deadline=None)
@given(prefix=surrounding, suffix=surrounding, blob=st.one_of(hex_blobs, base64_blobs, emails))
def test_a_blob_or_email_planted_anywhere_never_survives(prefix, suffix, blob):
    assume(blob not in prefix and blob not in suffix)

    output = sanitize_message(f"{prefix} {blob} {suffix}")

    assert blob not in output


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_any_message_is_bounded(message):
    assert len(sanitize_message(message)) <= MAX_MESSAGE_LENGTH


@pytest.mark.parametrize(
    "message",
    [
        "Knox answered 503 after 3 retries",
        "file /usr/lib/postgresql/15/bin/postgres not found",
        "test_start_run_returns_the_active_run failed",
        "approval 3 of 12 was rejected by the second approver",
    ],
)
def test_ordinary_messages_are_kept(message):
    assert sanitize_message(message) == message


def test_whitespace_is_folded_and_long_messages_end_with_an_ellipsis():
    assert sanitize_message("a\n\n  b\tc") == "a b c"
    long = sanitize_message("word " * 400)
    assert long.endswith("…")
    assert len(long) == MAX_MESSAGE_LENGTH


@pytest.mark.parametrize(
    "raw, code",
    [
        ("knox.timeout", "knox.timeout"),
        ("Knox.Timeout", "knox.timeout"),
        ("run.stale", "run.stale"),
        ("timeout", "error.timeout"),
        ("knox timeout!", "error.knox_timeout"),
        ("", "error.unknown"),
        (None, "error.unknown"),
        ("9.lives", "error.unknown"),
    ],
)
def test_codes_are_dotted_lowercase_identifiers(raw, code):
    assert normalize_code(raw) == code


def test_failures_are_bounded_in_number_and_say_how_many_were_dropped():
    failures = [{"code": "item.bad", "message": f"item {n}"} for n in range(MAX_FAILURES + 5)]

    kept = sanitize_failures(failures)

    assert len(kept) == MAX_FAILURES
    assert kept[-1] == {"code": "failures.truncated", "message": "6 more failures were not kept."}
    assert kept[0] == {"code": "item.bad", "message": "item 0"}
