"""Reading settings from the environment.

Small on purpose: Bureau needs booleans, lists and one ``DATABASE_URL``, and a
dependency for that would be more code to trust than this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


_ENGINES = {
    "sqlite": "django.db.backends.sqlite3",
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
}


def parse_database_url(url: str, *, base_dir: Path) -> dict:
    """Turn ``sqlite:///var/db.sqlite3`` or ``postgres://u:p@h:5432/name`` into a
    Django DATABASES entry. Relative SQLite paths are relative to ``base_dir``;
    query parameters become OPTIONS (``?sslmode=require``)."""
    parts = urlsplit(url)
    engine = _ENGINES.get(parts.scheme)
    if engine is None:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported; "
            f"use one of: {', '.join(sorted(_ENGINES))}"
        )
    options = dict(parse_qsl(parts.query))
    if engine.endswith("sqlite3"):
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        raw = unquote(parts.path)
        path = raw[1:] if raw.startswith("/") else raw
        name = Path(path) if Path(path).is_absolute() else base_dir / path
        if not path:
            raise ImproperlyConfigured("DATABASE_URL for sqlite needs a file path")
        return {"ENGINE": engine, "NAME": str(name), "OPTIONS": options}
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL needs a database name")
    return {
        "ENGINE": engine,
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
    }
