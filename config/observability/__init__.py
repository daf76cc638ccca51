"""Production observability: request ids, JSON logs, /metrics and /readyz.

Kept apart from the business apps: nothing here writes business data. The
app config connects django-q2's signals so that a task enqueued from a
request carries that request's id into the worker.
"""
