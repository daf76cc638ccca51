"""Carry the request id from the request that queued a task into the worker
that runs it.

django-q2 sends ``pre_enqueue`` with the task package just before it is
signed and pushed (``django_q.tasks.async_task``), and ``pre_execute`` in the
worker just before the function runs, with the same package. The id rides
in the package under its own key, not in the function's arguments, so task
functions do not change. A task without one (a schedule, a command) runs
with no request id: the worker's previous value is never inherited.
"""

from __future__ import annotations

from config.observability.context import current_request_id, sane_request_id, set_request_id

TASK_KEY = "bureau_request_id"


def attach_request_id(sender, task: dict, **kwargs) -> None:
    request_id = current_request_id()
    if request_id:
        task[TASK_KEY] = request_id


def adopt_request_id(sender, task: dict, **kwargs) -> None:
    if task.get("sync"):
        return  # run in the caller's own thread: it already has the id
    set_request_id(sane_request_id(task.get(TASK_KEY)))


def drop_request_id(sender, task: dict, **kwargs) -> None:
    if task.get("sync"):
        return
    # The worker loop is one long-lived thread: its own lines between tasks
    # belong to no request.
    set_request_id(None)


def connect() -> None:
    from django_q import signals

    signals.pre_enqueue.connect(attach_request_id, dispatch_uid="bureau.attach_request_id")
    signals.pre_execute.connect(adopt_request_id, dispatch_uid="bureau.adopt_request_id")
    # Not in older django-q2 releases: there the next task's pre_execute resets the id.
    after = getattr(signals, "post_execute_in_worker", None)
    if after is not None:
        after.connect(drop_request_id, dispatch_uid="bureau.drop_request_id")
