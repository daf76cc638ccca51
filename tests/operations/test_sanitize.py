import html
import io
import json
import logging
import os
import string
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from operations.sanitize import (
    _PHRASE_STOPWORDS,
    MAX_FAILURES,
    MAX_MESSAGE_LENGTH,
    PLACEHOLDERS,
    REDACTED,
    RedactSecretsFilter,
    normalize_code,
    redact_secrets,
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
    # No "=" or ":": a secret named in words.
    "password {s}",
    "Password is {s}",
    "wrong credential {s} for BUREAU",
    "credentials {s}",
    "your token {s} was refused",
    "api key {s}",
]

surrounding = st.text(max_size=200)


def _survives(secret: str, output: str) -> bool:
    return secret in output


@settings(max_examples=300, deadline=None)
@given(prefix=surrounding, suffix=surrounding, form=st.sampled_from(FORMS), secret=secret_values)
@example(prefix="", suffix="", form="password={s}", secret="hunter2hunter2")
@example(prefix="token ", suffix="", form="password {s}", secret="hunter2hunter2")
def test_a_keyed_secret_planted_anywhere_never_survives(prefix, suffix, form, secret):
    assume(secret not in prefix and secret not in suffix)
    assume(not any(secret in placeholder for placeholder in PLACEHOLDERS))
    # Ordinary English after "password" is kept by design ("password authentication failed").
    assume(secret.lower() not in _PHRASE_STOPWORDS)

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


@pytest.mark.parametrize(
    "message",
    [
        "password authentication failed for user bureau",
        "This password is too common.",
        "Authentication credentials were not provided.",
        "the token was rejected by Knox",
    ],
)
def test_ordinary_sentences_about_passwords_are_kept(message):
    assert sanitize_message(message) == message


# --- configured secret values ------------------------------------------------------------

# Whatever an operator may put in the environment: any printable text, spaces included.
configured_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=8, max_size=40
).filter(lambda value: len(value.strip()) >= 8)
any_text = st.text(max_size=200)


@settings(max_examples=300, deadline=None)
@given(
    setting=st.sampled_from(
        ["KNOX_TOKEN", "SECRET_KEY", "EMAIL_HOST_PASSWORD", "AUTOMATION_WEBHOOK_SECRET"]
    ),
    value=configured_values,
    prefix=any_text,
    suffix=any_text,
)
@example(
    setting="KNOX_TOKEN",
    value="plain words here",
    prefix="Knox said: ",
    suffix=" is not allowed",
)
@example(setting="SECRET_KEY", value="]abcdefgh", prefix="[REDACTED", suffix="abcdefgh")
def test_a_configured_secret_value_planted_in_any_text_never_survives(
    setting, value, prefix, suffix
):
    # given: the value is configured; the text around it is anything at all
    assume(not any(value in placeholder for placeholder in PLACEHOLDERS))
    assume(not any(placeholder in value for placeholder in PLACEHOLDERS))

    with override_settings(**{setting: value}):
        # when
        sanitized = sanitize_message(prefix + value + suffix)
        redacted = redact_secrets(prefix + value + suffix)

    # then
    assert value not in sanitized
    assert value not in redacted


@pytest.mark.parametrize(
    "spelling",
    [
        lambda v: v,
        lambda v: quote(v, safe=""),
        lambda v: quote_plus(v, safe=""),
        lambda v: json.dumps(v)[1:-1],
        html.escape,
    ],
    ids=["raw", "url-encoded", "form-encoded", "json-escaped", "html-escaped"],
)
def test_a_configured_secret_is_found_however_it_is_spelled(settings, spelling):
    settings.KNOX_TOKEN = 'k/n&o x"token'

    output = sanitize_message(f"Knox answered: not allowed {spelling(settings.KNOX_TOKEN)}!")

    assert output == f"Knox answered: not allowed {REDACTED}!"


def test_the_database_password_is_a_configured_secret(monkeypatch):
    monkeypatch.setitem(django_settings.DATABASES["default"], "PASSWORD", "db-pass-4711")

    assert sanitize_message("could not connect as bureau/db-pass-4711") == (
        f"could not connect as bureau/{REDACTED}"
    )


def test_apps_add_their_secret_settings_to_the_registry(settings):
    # given: an app's own secrets, a dict and a list, registered by name
    settings.SMS_GATEWAY = {"url": "https://sms.example", "key": "sms-key-0001"}
    settings.PUSH_KEYS = ["push-key-0001", "push-key-0002"]
    settings.BUREAU_SECRET_SETTINGS = [*settings.BUREAU_SECRET_SETTINGS, "SMS_GATEWAY", "PUSH_KEYS"]

    output = sanitize_message("gateway sms-key-0001 refused; push-key-0002 expired")

    assert "sms-key-0001" not in output and "push-key-0002" not in output


def test_an_empty_or_tiny_setting_redacts_nothing(settings):
    settings.KNOX_TOKEN = ""
    settings.EMAIL_HOST_PASSWORD = "abc"

    assert sanitize_message("abc def") == "abc def"


# --- the logging filter -------------------------------------------------------------------


@pytest.fixture
def console_log():
    """What the configured console handler (with its filters from LOGGING) writes."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    )
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def test_log_records_are_redacted_in_message_arguments_and_exception(settings, console_log):
    settings.KNOX_TOKEN = "knox-token-5150"
    logger = logging.getLogger("bureau.test")

    logger.warning("Knox echoed knox-token-5150 back")
    logger.warning("Knox answered %s with %r", "HTTP 401", {"token": "knox-token-5150"})
    try:
        raise RuntimeError("login with password hunter2hunter2 and knox-token-5150")
    except RuntimeError:
        logger.exception("submit failed")

    written = console_log.getvalue()
    assert "knox-token-5150" not in written
    assert "hunter2hunter2" not in written
    assert "Knox echoed [REDACTED] back" in written
    assert "RuntimeError: login with password [REDACTED] and [REDACTED]" in written
    assert "Traceback" in written


def test_the_filter_is_configured_on_every_handler_in_settings():
    logging_config = django_settings.LOGGING

    assert logging_config["filters"]["redact_secrets"]["()"] == (
        "operations.sanitize.RedactSecretsFilter"
    )
    for name, handler in logging_config["handlers"].items():
        assert "redact_secrets" in handler.get("filters", []), name


def test_every_log_handler_in_the_process_redacts():
    # Django's default handlers (its DEBUG console, mail_admins, runserver's log)
    # would print records before the root's filter saw them.
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.NullHandler) or type(handler).__module__.startswith(
                "_pytest"
            ):
                continue
            assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters), (
                logger.name,
                handler,
            )


def test_the_settings_register_the_gateway_keys_and_every_listed_webhook_secret():
    # given: the real settings module, loaded in a fresh process with these secrets set
    code = (
        "import django; django.setup();"
        "from operations.sanitize import sanitize_message as s;"
        "print(s('sms k-sms-9Q7 push k-push-4Z1 hook k-hook-8X2'))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "SMS_GATEWAY_KEY": "k-sms-9Q7",
        "PUSH_GATEWAY_KEY": "k-push-4Z1",
        "AUTOMATION_WEBHOOK_SECRETS": "AUTOMATION_WEBHOOK_SECRET_PARTNER",
        "AUTOMATION_WEBHOOK_SECRET_PARTNER": "k-hook-8X2",
    }
    env.pop("DATABASE_URL", None)

    # when
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout

    # then
    assert output.strip() == "sms [REDACTED] push [REDACTED] hook [REDACTED]"
