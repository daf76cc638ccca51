"""gunicorn settings for Bureau's web role, read from the environment.

    gunicorn --config config/gunicorn.conf.py config.wsgi

| variable | default | |
|---|---|---|
| GUNICORN_BIND | 0.0.0.0:8000 | address(es), comma-separated |
| GUNICORN_WORKERS | number of CPUs | processes |
| GUNICORN_THREADS | 4 | threads per process (gthread worker when > 1) |
| GUNICORN_TIMEOUT | 60 | s a worker may be silent before it is killed and replaced |
| GUNICORN_GRACEFUL_TIMEOUT | 30 | s to finish requests on restart / SIGTERM |
| GUNICORN_KEEPALIVE | 5 | s an idle keep-alive connection is held (behind a proxy) |
| GUNICORN_MAX_REQUESTS | 0 | recycle a worker after this many requests (0: never) |
| GUNICORN_ACCESS_LOG | - | access log file, "-" for stdout, empty for none |

Each worker process holds its own database connections (or its own pool,
DB_POOL): workers × threads connections per machine at most.

HTTP metrics: every worker process counts its own requests, so this file
points prometheus_client at a shared directory (PROMETHEUS_MULTIPROC_DIR,
emptied at every start; a fresh temporary one when unset) before any worker
imports it, and /metrics adds up the files of all workers.
"""

import os
import shutil
import tempfile


def _int(name, default):
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = [a.strip() for a in os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",") if a.strip()]
workers = _int("GUNICORN_WORKERS", os.cpu_count() or 1)
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# The app is imported by each worker after the fork, never by the master: no
# database connection or pool is ever shared between processes.
preload_app = False
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
# Django's own error logging goes through LOGGING; gunicorn's to stderr.
errorlog = "-"
# gunicorn ≥ 24's control socket defaults to one path per user
# (~/.gunicorn/gunicorn.ctl), which two servers on a machine would fight over;
# Bureau is driven by signals (HUP reloads, TERM stops). Older gunicorns
# ignore the name.
control_socket_disable = True

if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    # gunicorn's own lines (start, worker boot, access) as JSON too.
    def _stream(name):
        return {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": f"ext://sys.{name}",
        }

    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.observability.logs.JsonFormatter"}},
        "handlers": {"console": _stream("stdout"), "error_console": _stream("stderr")},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }

# --- prometheus_client multiprocess mode ---------------------------------------------------
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_metrics_dir_is_ours = not _metrics_dir
if _metrics_dir_is_ours:
    _metrics_dir = tempfile.mkdtemp(prefix="bureau-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    # Values left by a previous server would be added to this one's.
    os.makedirs(_metrics_dir, exist_ok=True)
    for entry in os.listdir(_metrics_dir):
        path = os.path.join(_metrics_dir, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    if _metrics_dir_is_ours:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
