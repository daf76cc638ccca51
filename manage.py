#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A configuration mistake (SECRET_KEY unset in production, a bad
        # DATABASE_URL) is one line for the operator, not a traceback.
        sys.stderr.write(f"ImproperlyConfigured: {error}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
