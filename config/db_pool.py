"""Keeping Django's psycopg connection pool (``DB_POOL``) on one side of a fork.

A pool holds open sockets and background threads; a child process forked
with them would share the parent's server sessions (django-q2's cluster
forks its workers, pusher and monitor from a process that has used the
database, and its ``close_all()`` before spawning only hands connections back
to the pool). So, before any fork, the forking process closes its pools:
the child starts without one and opens its own on first use, and so does
the parent (forks are rare: a cluster start or a worker's reincarnation).
"""

from __future__ import annotations

import os


def close_pools_before_fork() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        pools = getattr(type(connection), "_connection_pools", None)
        if not pools or connection.alias not in pools:
            continue  # no pool (SQLite, or not used yet): never create one here
        connection.close()
        connection.close_pool()


def install() -> None:
    os.register_at_fork(before=close_pools_before_fork)
