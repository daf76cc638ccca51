"""Bureau settings. Everything that differs between machines comes from the
environment (see ``.env.example``); nothing secret lives in the repository."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BUREAU_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (DEBUG=true allows a dev default)."
        )
    SECRET_KEY = "django-insecure-bureau-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "config.observability",
    "operations",
    "approvals",
    "automation",
    "scanning",
]

MIDDLEWARE = [
    # Outermost: every log line of the request carries its id (config.observability).
    "config.observability.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files with DEBUG off (admin, Swagger UI), before anything that
    # needs a session or a database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.observability.middleware.HttpMetricsMiddleware",
    # Under /api/: JSON 413 for an oversized body, 400 for a NUL in the query (config.http).
    "config.http.ApiRequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'bureau.sqlite3'}"
_default_db = parse_database_url(DATABASE_URL, base_dir=BASE_DIR)
# Persistent connections: django-q2's ORM broker polls the database constantly;
# reconnecting for every query (Django's default) cuts its throughput ~5x on
# PostgreSQL. Health checks drop a connection the server has closed.
_default_db["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 600)
_default_db["CONN_HEALTH_CHECKS"] = True
if _default_db["ENGINE"].endswith("sqlite3"):
    # A fresh checkout has no var/ yet; SQLite cannot create its file without it.
    Path(_default_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server read while the cluster writes; IMMEDIATE takes the
    # write lock at BEGIN so two writers queue on busy_timeout instead of one
    # failing with "database is locked" halfway through a transaction.
    _default_db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **_default_db["OPTIONS"],
    }
else:
    _default_db["OPTIONS"].setdefault("connect_timeout", 10)
# Django's psycopg connection pool (per process; see README "Production").
# Django refuses persistent connections with a pool: connections go back to
# the pool at the end of each request instead of staying with the thread.
if env_bool("DB_POOL", False):
    if _default_db["ENGINE"].endswith("sqlite3"):
        raise ImproperlyConfigured("DB_POOL=true needs PostgreSQL (DATABASE_URL=postgres://…).")
    try:
        _pool_timeout = float(env_str("DB_POOL_TIMEOUT") or 10)
    except ValueError:
        raise ImproperlyConfigured("DB_POOL_TIMEOUT must be a number of seconds.") from None
    _pool = {
        "min_size": env_int("DB_POOL_MIN_SIZE", 2),
        "max_size": env_int("DB_POOL_MAX_SIZE", 10),
        "timeout": _pool_timeout,
    }
    if not 0 <= _pool["min_size"] <= _pool["max_size"] or _pool["max_size"] < 1:
        raise ImproperlyConfigured("DB_POOL_MIN_SIZE must be between 0 and DB_POOL_MAX_SIZE (≥ 1).")
    _default_db["CONN_MAX_AGE"] = 0
    _default_db["OPTIONS"]["pool"] = _pool
    from config.db_pool import install as _close_pools_before_fork

    _close_pools_before_fork()  # a forked child (qcluster's workers) opens its own pool
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Console: timestamps show seconds (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
# `manage.py collectstatic` writes here; WhiteNoise serves it with DEBUG off
# (hashed names, compressed, cached for a year). In DEBUG it serves the apps'
# files directly, as runserver does.
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")

# --- security when not in development ---------------------------------------------
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS in production (README "Production"; `check --deploy` asks for each).
# Off unless set: HSTS (and preload above all) cannot be taken back from
# browsers once sent, and a redirect without the proxy header below loops.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Probes and scrapers talk plain HTTP to the instance, not through the proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: the header it sets, e.g. "X-Forwarded-Proto"
# (value https) or "X-Forwarded-Ssl=on". Only when clients cannot reach the
# web server except through that proxy, which must overwrite the header.
_proxy_header, _, _proxy_value = (env_str("SECURE_PROXY_SSL_HEADER") or "").partition("=")
if _proxy_header.strip():
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_header.strip().upper().replace("-", "_"),
        _proxy_value.strip() or "https",
    )

# --- REST API -----------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Declares every operation's error answers too (config.schema).
    "DEFAULT_SCHEMA_CLASS": "config.schema.BureauAutoSchema",
    "EXCEPTION_HANDLER": "config.exception_handler.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # A NUL character anywhere in a body is a 400 naming its path (config.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "config.parsers.FormParser",
        "config.parsers.MultiPartParser",
    ],
    # Configured secret values never leave in an answer (config.renderers).
    "DEFAULT_RENDERER_CLASSES": [
        "config.renderers.RedactingJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # The token endpoint: attempts per username and client address (config.auth).
    "DEFAULT_THROTTLE_RATES": {"login": env_str("API_LOGIN_RATE", "10/minute")},
    # Proxies in front of Bureau whose X-Forwarded-For is trusted for the client
    # address; 0 (the default) uses the connection's address and ignores the header.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
}
# Request bodies (other than multipart uploads) above this are a 413 on the API.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)

# The throttle's counts are shared by every web worker: a database table (made by
# migrate). Django's default cache stays per process (django-q2 writes its cluster
# status there every half second, which does not belong in the database).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "bureau_cache",
    },
}
API_THROTTLE_CACHE = "throttle"

SPECTACULAR_SETTINGS = {
    "TITLE": "Bureau API",
    "DESCRIPTION": "Approvals, automation, scanning and the operation-run ledger.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs page need a signed-in user, like the rest of the API.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from drf-spectacular-sidecar: the docs page works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status"; name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "OperationRunStatusEnum": "operations.choices.RunStatus",
        "OperationRunOutcomeEnum": "operations.choices.RunOutcome",
        "PendingActionStatusEnum": "approvals.choices.ActionStatus",
        "AlertStatusEnum": "automation.choices.AlertStatus",
    },
}

# --- background work (django-q2) --------------------------------------------------------
Q_CLUSTER = {
    "name": "bureau",
    "orm": "default",
    "workers": env_int("Q_WORKERS", 2),
    # A task taking longer than `timeout` is killed. The ORM broker hands a task
    # out again when it is not acknowledged within `retry`; `retry` must stay
    # well above `timeout`, or a slow task is delivered twice.
    "timeout": env_int("Q_TIMEOUT", 300),
    "retry": env_int("Q_RETRY", 900),
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Background tasks",
}

# --- Bureau -------------------------------------------------------------------------------
# A running operation run's lease: its worker renews the heartbeat every third of it; a
# run whose heartbeat is older is taken over by the next attempt (its worker died).
RUN_LEASE_SECONDS = env_int("RUN_LEASE_SECONDS", 60)
BUREAU_SYSTEM_WORKSPACE_SLUG = "system"
# Settings whose values are secrets: operations.sanitize removes these values wherever they
# would show (API answers, stored messages and reasons, failure summaries, log lines), also
# when a remote system echoes them back. Strings, or lists/dicts of strings. Each app adds its
# own secret settings here; every database password is always included.
BUREAU_SECRET_SETTINGS = [
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "KNOX_TOKEN",
    "EMAIL_HOST_PASSWORD",
    "AUTOMATION_WEBHOOK_SECRET",
]

# --- automation ---------------------------------------------------------------------------
AUTOMATION_ENTITIES = env_list("AUTOMATION_ENTITIES", [])  # extra "app_label.Model" rules may watch
AUTOMATION_WEBHOOK_SECRET = env_str(
    "AUTOMATION_WEBHOOK_SECRET", ""
)  # HMAC key for webhook signatures
# Other keys a rule may name as its webhook's secret_env: AUTOMATION_WEBHOOK_SECRET_<NAME>
# settings, each read from the environment variable of that name.
AUTOMATION_WEBHOOK_SECRETS = env_list("AUTOMATION_WEBHOOK_SECRETS", [])
for _name in AUTOMATION_WEBHOOK_SECRETS:
    # Each listed key becomes a setting, so the redaction registry knows its value
    # (automation's `manage.py check` reports names outside this pattern).
    if _name.startswith("AUTOMATION_WEBHOOK_SECRET_") and _name.isupper():
        globals()[_name] = env_str(_name, "")
AUTOMATION_MAX_CHAIN_DEPTH = env_int("AUTOMATION_MAX_CHAIN_DEPTH", 5)
AUTOMATION_DELIVERY_MAX_ATTEMPTS = env_int("AUTOMATION_DELIVERY_MAX_ATTEMPTS", 5)
AUTOMATION_DELIVERY_BACKOFF_SECONDS = env_int("AUTOMATION_DELIVERY_BACKOFF_SECONDS", 30)
# Automation's workers (issues 10 and 11): a delivery being sent holds a lease this long (keep
# it above the webhook and mail timeouts); a send whose worker died is sent again with the same
# idempotency key, failed only after its workers died this many times. An outbox backlog beyond
# one batch is shared by up to AUTOMATION_OUTBOX_DRAINERS drain tasks; deliveries are sent
# AUTOMATION_DELIVERY_TASK_SIZE a task.
AUTOMATION_DELIVERY_LEASE_SECONDS = env_int("AUTOMATION_DELIVERY_LEASE_SECONDS", 60)
AUTOMATION_DELIVERY_MAX_ABANDONED = env_int("AUTOMATION_DELIVERY_MAX_ABANDONED", 3)
AUTOMATION_OUTBOX_BATCH_SIZE = env_int("AUTOMATION_OUTBOX_BATCH_SIZE", 100)
AUTOMATION_OUTBOX_DRAINERS = env_int("AUTOMATION_OUTBOX_DRAINERS", 4)
AUTOMATION_DELIVERY_TASK_SIZE = env_int("AUTOMATION_DELIVERY_TASK_SIZE", 20)
# SMS and push notifications go through pluggable backends (as e-mail does): console while
# DEBUG, else the HTTP gateway named by URL and key (a bearer token).
SMS_BACKEND = env_str("SMS_BACKEND") or (
    "automation.backends.sms.ConsoleBackend" if DEBUG else "automation.backends.sms.HTTPBackend"
)
SMS_GATEWAY_URL = env_str("SMS_GATEWAY_URL", "")
SMS_GATEWAY_KEY = env_str("SMS_GATEWAY_KEY", "")
PUSH_BACKEND = env_str("PUSH_BACKEND") or (
    "automation.backends.push.ConsoleBackend" if DEBUG else "automation.backends.push.HTTPBackend"
)
PUSH_GATEWAY_URL = env_str("PUSH_GATEWAY_URL", "")
PUSH_GATEWAY_KEY = env_str("PUSH_GATEWAY_KEY", "")
BUREAU_SECRET_SETTINGS += ["SMS_GATEWAY_KEY", "PUSH_GATEWAY_KEY", *AUTOMATION_WEBHOOK_SECRETS]
# Inbound webhooks (issue 13): each source's HMAC secret is an AUTOMATION_INBOUND_SECRET_<NAME>
# environment variable listed here (a source names one); a post's timestamp may be this many
# seconds from the server's clock either way, and its body this many bytes.
AUTOMATION_INBOUND_SECRETS = env_list("AUTOMATION_INBOUND_SECRETS", [])
for _name in AUTOMATION_INBOUND_SECRETS:
    if _name.startswith("AUTOMATION_INBOUND_SECRET_") and _name.isupper():
        globals()[_name] = env_str(_name, "")
        BUREAU_SECRET_SETTINGS.append(_name)
AUTOMATION_INBOUND_TOLERANCE_SECONDS = env_int("AUTOMATION_INBOUND_TOLERANCE_SECONDS", 300)
AUTOMATION_INBOUND_MAX_BYTES = env_int("AUTOMATION_INBOUND_MAX_BYTES", 262_144)

# --- mail (automation's email notifications) ----------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Well below automation's delivery lease (120 s), so a hung SMTP server cannot
# outlive the lease and have the same mail sent twice.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "bureau@localhost")

# --- scanning -----------------------------------------------------------------------------
SCANNING_AGENT_STALE_AFTER = env_int(
    "SCANNING_AGENT_STALE_AFTER", 120
)  # s without heartbeat: agent lost
SCANNING_READY_IDLE_TIMEOUT = env_int(
    "SCANNING_READY_IDLE_TIMEOUT", 1800
)  # idle ready job: canceled
SCANNING_SCAN_STALL_TIMEOUT = env_int(
    "SCANNING_SCAN_STALL_TIMEOUT", 1800
)  # scanning, no progress: failed
SCANNING_MAX_BATCH_BYTES = env_int("SCANNING_MAX_BATCH_BYTES", 100 * 1024 * 1024)
SCANNING_AGENT_TOKEN_FILE = Path(
    env_str("SCANNING_AGENT_TOKEN_FILE") or VAR_DIR / "scan_agent.token"
)
# Days a committed job's batch and merged files are kept (the Document's own file stays).
SCANNING_FILE_RETENTION_DAYS = env_int("SCANNING_FILE_RETENTION_DAYS", 30)

# --- Knox (Samsung Brity approval API) --------------------------------------------------------
# Defaults point at the bundled simulator (`manage.py knox_simulator`, started by `make run`).
KNOX_BASE_URL = env_str("KNOX_BASE_URL", "http://127.0.0.1:8765")
KNOX_SYSTEM_ID = env_str("KNOX_SYSTEM_ID", "BUREAU")
KNOX_TOKEN = env_str("KNOX_TOKEN", "")
KNOX_CONNECT_TIMEOUT = float(env_str("KNOX_CONNECT_TIMEOUT", "3"))
KNOX_READ_TIMEOUT = float(env_str("KNOX_READ_TIMEOUT", "10"))
KNOX_STATUS_BATCH_SIZE = env_int("KNOX_STATUS_BATCH_SIZE", 100)
KNOX_STATUS_RETRIES = env_int("KNOX_STATUS_RETRIES", 2)
# Status calls the poll keeps under way at once (issue 11): enough to overlap Knox's
# answers with our settling, few enough not to overload Knox.
KNOX_POLL_CONCURRENCY = env_int("KNOX_POLL_CONCURRENCY", 4)
KNOX_SUBMIT_PATH = env_str("KNOX_SUBMIT_PATH", "/approval/api/v2.0/approvals/submit")
KNOX_STATUS_PATH = env_str("KNOX_STATUS_PATH", "/approval/api/v2.0/approvals/statuses")
KNOX_WITHDRAW_PATH = env_str("KNOX_WITHDRAW_PATH", "/approval/api/v2.0/approvals/withdraw")
# A submit that never got an answer is asked about again after this many seconds.
KNOX_SUBMIT_GRACE_SECONDS = env_int("KNOX_SUBMIT_GRACE_SECONDS", 60)
# An unchanged document's last_checked_at is renewed when older than this
# (the poll would otherwise rewrite every in-flight row every minute).
KNOX_CHECK_STAMP_SECONDS = env_int("KNOX_CHECK_STAMP_SECONDS", 600)

# --- operator console: the admin index's "Needs attention" (config.observability.attention) ---
# Seconds past which a tile turns red: an action still pending at Knox, the last
# successful Knox poll, the oldest unprocessed outbox event.
CONSOLE_KNOX_PENDING_MAX_AGE = env_int("CONSOLE_KNOX_PENDING_MAX_AGE", 2 * 24 * 3600)
CONSOLE_KNOX_POLL_MAX_AGE = env_int("CONSOLE_KNOX_POLL_MAX_AGE", 300)
CONSOLE_OUTBOX_MAX_AGE = env_int("CONSOLE_OUTBOX_MAX_AGE", 300)

# --- observability (config.observability; README "Production") -----------------------------
# /metrics is off (404) until a bearer token or an allowlist of peer
# addresses/networks is set; /readyz wants a cluster task within this window.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
READYZ_CLUSTER_MAX_AGE = env_int("READYZ_CLUSTER_MAX_AGE", 180)
# "plain" for people, "json" for log collectors: one object per line.
LOG_FORMAT = (env_str("LOG_FORMAT") or "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.observability.logs.JsonFormatter"},
    },
    # Every record is redacted on its way out (configured secret values and secret patterns,
    # in the message, its arguments and the exception text): set it on every handler. The
    # JSON formatter writes the message after the filters ran.
    "filters": {
        "redact_secrets": {"()": "operations.sanitize.RedactSecretsFilter"},
        # runserver's request log without the scan agent's answered polls (make run).
        "quiet_agent_polls": {"()": "scanning.logs.QuietAgentPolls"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (an unfiltered console while DEBUG, mail_admins, the
        # runserver log) are replaced: their records go to the root's filtered handler.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {
            "handlers": [],
            "level": "INFO",
            "propagate": True,
            "filters": ["quiet_agent_polls"],
        },
        "django.db.backends": {"level": "WARNING"},
        "pikepdf": {"level": "WARNING"},
    },
}
