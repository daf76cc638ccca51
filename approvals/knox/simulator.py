"""A Knox approval API simulator: a real HTTP server for development and tests.

It speaks the API our client speaks (submit, batch statuses, withdraw), keeps
documents in a JSON file so a restart loses none, is idempotent on apInfId,
shows a small page where a person approves, rejects or withdraws, offers JSON
endpoints under ``/sim/`` for tests to decide and to inject faults, and can
approve documents by itself after a delay for demos.

A status answer carries each document's approval line (``aplns``: ``epId``,
``seq``, ``role``, ``aplnStatsCode``). ``POST /sim/documents/<id>/decide``
with ``{"status": 5, "delegateEpId": "EP-…"}`` approves a document by
delegation (전결): the delegate's line entry carries code 5 (added to the
line when they were not in it), which is where Bureau reads the delegate from.

Faults (``--fault`` on the command line or ``POST /sim/faults``):
  latency=SECONDS            every API answer waits this long first
  submit|statuses|withdraw=MODE, MODE one of
      error      HTTP 500
      reject     HTTP 200 {"result": "fail", ...}
      timeout    do the work, then answer only after ``hang`` seconds (default 30)
      malformed  HTTP 200 with a body that is not JSON
  malformed_ids=ID,ID        statuses answer an unreadable status for these documents
  error_ids=ID,ID            a status call asking about any of these documents gets HTTP 500
  hang=SECONDS               how long "timeout" waits
  message=TEXT               what "reject" and "error" answer (as Knox's errorMessage, or
                             in the error page), e.g. to echo a token back
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

logger = logging.getLogger(__name__)

IN_PROGRESS = {-2, -1, 0, 1}
DECISIONS = {"approve": 2, "reject": 3, "withdraw": 4}
DELEGATED_FINAL = 5
FAULT_MODES = {"error", "reject", "timeout", "malformed"}
AP_INF_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _now() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


def parse_fault(spec: str, faults: dict) -> None:
    """Apply one ``key=value`` fault spec to ``faults``; ValueError if it is not one."""
    key, _, value = spec.partition("=")
    key, value = key.strip(), value.strip()
    if key in ("latency", "hang"):
        faults[key] = float(value)
    elif key in ("submit", "statuses", "withdraw"):
        if value not in FAULT_MODES | {"", "none"}:
            raise ValueError(
                f"fault mode for {key} must be one of {', '.join(sorted(FAULT_MODES))}"
            )
        faults[key] = value if value not in ("", "none") else None
    elif key in ("malformed_ids", "error_ids"):
        faults[key] = [v for v in value.split(",") if v]
    elif key == "message":
        faults[key] = value
    else:
        raise ValueError(f"unknown fault {key!r}")


def default_faults() -> dict:
    return {
        "latency": 0.0,
        "hang": 30.0,
        "submit": None,
        "statuses": None,
        "withdraw": None,
        "malformed_ids": [],
        "error_ids": [],
        "message": "",
    }


class SimulatorState:
    def __init__(self, path: Path, *, auto_approve_after: float | None = None, token: str = ""):
        self.path = path
        self.auto_approve_after = auto_approve_after
        self.token = token
        self.lock = threading.RLock()
        self.documents: dict[str, dict] = {}
        self.faults = default_faults()
        self.calls: Counter[str] = Counter()
        # API calls being answered right now, and the most there ever were at
        # once (since the last reset): how tests see a client's concurrency.
        self.in_flight = 0
        self.max_in_flight = 0
        # A reset starts a new generation: a call still sleeping from before
        # it (a client that gave up on a slow answer) is not counted after it.
        self.generation = 0
        if path.exists():
            self.documents = json.loads(path.read_text() or "{}")

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".knox-sim-")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.documents, handle)
        os.replace(tmp, self.path)

    def _auto_decide(self) -> None:
        if self.auto_approve_after is None:
            return
        now = time.time()
        changed = False
        for doc in self.documents.values():
            if doc["status"] in IN_PROGRESS and now - doc["receivedAt"] >= self.auto_approve_after:
                self._set_status(doc, 2, "auto-approved by the simulator")
                changed = True
        if changed:
            self.save()

    @staticmethod
    def _set_status(
        doc: dict, status: int, opinion: str = "", delegate_ep_id: str | None = None
    ) -> None:
        doc["status"] = status
        doc["opinion"] = opinion
        doc["decidedAt"] = _now()
        # Approved by delegation (전결, status 5): who decided, shown in the line.
        doc["delegateEpId"] = delegate_ep_id if status == DELEGATED_FINAL else None

    # --- API -----------------------------------------------------------------------

    def submit(self, body: dict) -> tuple[int, dict]:
        missing = [k for k in ("apInfId", "subject", "contents", "aplns") if not body.get(k)]
        if missing:
            return 400, _fail("INVALID_REQUEST", f"missing fields: {', '.join(missing)}")
        ap_inf_id = str(body["apInfId"])
        if not AP_INF_ID.match(ap_inf_id):
            return 400, _fail("INVALID_REQUEST", "apInfId must be 1-32 letters, digits, - or _")
        if not isinstance(body["aplns"], list) or not all(
            isinstance(a, dict) and a.get("epId") for a in body["aplns"]
        ):
            return 400, _fail("INVALID_REQUEST", "every apln needs an epId")
        with self.lock:
            existing = self.documents.get(ap_inf_id)
            if existing is not None:
                if (existing["subject"], existing["contents"]) != (
                    body["subject"],
                    body["contents"],
                ):
                    return 409, _fail(
                        "DUPLICATE_AP_INF_ID", f"{ap_inf_id} was submitted with other contents"
                    )
                return 200, {
                    "result": "success",
                    "data": {"apInfId": ap_inf_id, "status": existing["status"]},
                }
            self.documents[ap_inf_id] = {
                "apInfId": ap_inf_id,
                "subject": body["subject"],
                "contents": body["contents"],
                "aplns": body["aplns"],
                "sbmDt": body.get("sbmDt"),
                "status": 1,
                "opinion": "",
                "receivedAt": time.time(),
                "decidedAt": None,
            }
            self.save()
        return 200, {"result": "success", "data": {"apInfId": ap_inf_id, "status": 1}}

    def statuses(self, body: dict) -> tuple[int, dict]:
        ids = body.get("apInfIds")
        if not isinstance(ids, list):
            return 400, _fail("INVALID_REQUEST", "apInfIds must be a list")
        with self.lock:
            self._auto_decide()
            data, not_found = [], []
            for ap_inf_id in ids:
                doc = self.documents.get(ap_inf_id)
                if doc is None:
                    not_found.append(ap_inf_id)
                    continue
                status = "??" if ap_inf_id in self.faults["malformed_ids"] else str(doc["status"])
                data.append(
                    {
                        "apInfId": ap_inf_id,
                        "status": status,
                        "opinion": doc["opinion"],
                        "decidedAt": doc["decidedAt"],
                        "aplns": _approval_line(doc),
                    }
                )
        return 200, {"result": "success", "data": data, "notFound": not_found}

    def withdraw(self, body: dict) -> tuple[int, dict]:
        ap_inf_id = body.get("apInfId")
        with self.lock:
            doc = self.documents.get(ap_inf_id)
            if doc is None:
                return 404, _fail("NOT_FOUND", f"no document {ap_inf_id}")
            if doc["status"] not in IN_PROGRESS:
                return 409, _fail(
                    "ALREADY_DECIDED", f"{ap_inf_id} is already decided ({doc['status']})"
                )
            self._set_status(doc, 4, body.get("opinion") or "withdrawn")
            self.save()
        return 200, {"result": "success", "data": {"apInfId": ap_inf_id, "status": 4}}

    # --- for people and tests ----------------------------------------------------------

    def decide(
        self, ap_inf_id: str, status: int, opinion: str = "", delegate_ep_id: str | None = None
    ) -> dict | None:
        with self.lock:
            doc = self.documents.get(ap_inf_id)
            if doc is None:
                return None
            self._set_status(doc, status, opinion, delegate_ep_id)
            self.save()
            return doc

    def decide_many(self, ap_inf_ids: list[str], status: int) -> int:
        with self.lock:
            count = 0
            for ap_inf_id in ap_inf_ids:
                doc = self.documents.get(ap_inf_id)
                if doc is not None:
                    self._set_status(doc, status)
                    count += 1
            self.save()
            return count

    def add_many(self, documents: list[dict]) -> int:
        with self.lock:
            for doc in documents:
                self.documents[doc["apInfId"]] = {
                    "apInfId": doc["apInfId"],
                    "subject": doc.get("subject", ""),
                    "contents": doc.get("contents", ""),
                    "aplns": doc.get("aplns", []),
                    "sbmDt": None,
                    "status": int(doc.get("status", 1)),
                    "opinion": "",
                    "receivedAt": time.time(),
                    "decidedAt": None,
                }
            self.save()
            return len(documents)


def _approval_line(doc: dict) -> list[dict]:
    """The document's approval line as the status answer shows it: each
    approver with its own ``aplnStatsCode``: 0 while undecided, the
    document's code once decided. Approved by delegation (5), only the
    delegate carries 5 (the approvers after them never decided): the approver
    of that EP ID in the line, or a delegate added at its end (someone
    standing in for an approver)."""
    status, delegate = doc["status"], doc.get("delegateEpId")
    # Approved by delegation with nobody named: the line names no one either.
    decided = status not in IN_PROGRESS and status != DELEGATED_FINAL
    line = [
        {
            "epId": str(apln.get("epId", "")),
            "seq": str(apln.get("seq", "")),
            "role": str(apln.get("role", "")),
            "aplnStatsCode": str(status) if decided and str(apln.get("role")) != "0" else "0",
        }
        for apln in doc.get("aplns") or []
        if isinstance(apln, dict)
    ]
    if delegate:
        mine = [entry for entry in line if entry["epId"] == delegate]
        if not mine:
            mine = [{"epId": delegate, "seq": str(len(line)), "role": "1"}]
            line.extend(mine)
        mine[0]["aplnStatsCode"] = str(status)
    return line


def _fail(code: str, message: str) -> dict:
    return {"result": "fail", "errorCode": code, "errorMessage": message}


class Handler(BaseHTTPRequestHandler):
    server_version = "KnoxSimulator/1.0"
    state: SimulatorState
    paths: dict[str, str]

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        logger.debug("%s " + format, self.address_string(), *args)

    # --- helpers -----------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict | None:
        try:
            body = json.loads(self._body() or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _send(self, status: int, payload, content_type: str = "application/json") -> None:
        raw = (
            payload
            if isinstance(payload, bytes)
            else json.dumps(payload, ensure_ascii=False).encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _redirect(self, location: str) -> None:
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _authorised(self) -> bool:
        if not self.headers.get("System-ID"):
            return False
        token = self.state.token
        return not token or self.headers.get("Authorization") == f"Bearer {token}"

    # --- routing ---------------------------------------------------------------------------

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path = self.path.split("?")[0]
        if path == "/":
            return self._send(200, self._page().encode(), "text/html")
        if path == "/sim/health":
            return self._send(200, {"status": "ok"})
        if path == "/sim/stats":
            with self.state.lock:
                return self._send(
                    200,
                    {
                        "calls": dict(self.state.calls),
                        "documents": len(self.state.documents),
                        "max_concurrent_calls": self.state.max_in_flight,
                    },
                )
        if path == "/sim/documents":
            with self.state.lock:
                return self._send(200, {"documents": list(self.state.documents.values())})
        match = re.fullmatch(r"/sim/documents/([^/]+)", path)
        if match:
            with self.state.lock:
                doc = self.state.documents.get(match.group(1))
            return self._send(200, doc) if doc else self._send(404, {"detail": "not found"})
        return self._send(404, {"detail": "not found"})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?")[0]
        api = {
            self.paths["submit"]: "submit",
            self.paths["statuses"]: "statuses",
            self.paths["withdraw"]: "withdraw",
        }
        if path in api:
            return self._api(api[path])
        if path == "/ui/decide":
            form = parse_qs(self._body().decode())
            ap_inf_id = form.get("apInfId", [""])[0]
            decision = form.get("decision", [""])[0]
            if decision in DECISIONS:
                self.state.decide(
                    ap_inf_id, DECISIONS[decision], f"{decision}d on the simulator page"
                )
            return self._redirect("/")
        body = self._json_body()
        if body is None:
            return self._send(400, {"detail": "body must be a JSON object"})
        match = re.fullmatch(r"/sim/documents/([^/]+)/decide", path)
        if match:
            doc = self.state.decide(
                match.group(1),
                int(body.get("status", 2)),
                body.get("opinion", ""),
                body.get("delegateEpId") or None,
            )
            return self._send(200, doc) if doc else self._send(404, {"detail": "not found"})
        if path == "/sim/documents/decide":
            count = self.state.decide_many(
                list(body.get("apInfIds", [])), int(body.get("status", 2))
            )
            return self._send(200, {"decided": count})
        if path == "/sim/documents/bulk":
            return self._send(200, {"added": self.state.add_many(list(body.get("documents", [])))})
        if path == "/sim/faults":
            faults = default_faults()
            try:
                for key, value in body.items():
                    parse_fault(
                        f"{key}={','.join(value) if isinstance(value, list) else value}", faults
                    )
            except ValueError as error:
                return self._send(400, {"detail": str(error)})
            with self.state.lock:
                self.state.faults = faults
            return self._send(200, faults)
        if path == "/sim/reset":
            with self.state.lock:
                self.state.documents.clear()
                self.state.calls.clear()
                self.state.max_in_flight = 0
                self.state.in_flight = 0
                self.state.generation += 1
                self.state.faults = default_faults()
                self.state.save()
            return self._send(200, {"status": "reset"})
        return self._send(404, {"detail": "not found"})

    def _api(self, name: str) -> None:
        with self.state.lock:
            self.state.calls[name] += 1
            generation = self.state.generation
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
            faults = dict(self.state.faults)
        try:
            self._answer_api(name, faults)
        finally:
            with self.state.lock:
                if self.state.generation == generation:
                    self.state.in_flight -= 1

    def _answer_api(self, name: str, faults: dict) -> None:
        if faults["latency"]:
            time.sleep(faults["latency"])
        if not self._authorised():
            return self._send(
                401, _fail("UNAUTHORIZED", "System-ID and a valid bearer token are required")
            )
        mode = faults.get(name)
        message = faults["message"]
        if mode == "error":
            page = f"<html><body>Internal Server Error {html.escape(message)}</body></html>"
            return self._send(500, page.encode(), "text/html")
        if mode == "reject":
            return self._send(
                200,
                _fail("SIMULATED_REJECTION", message or f"{name} refused by the simulator"),
            )
        if mode == "malformed":
            return self._send(200, b"{this is not json", "application/json")
        body = self._json_body()
        if body is None:
            return self._send(400, _fail("INVALID_REQUEST", "body must be a JSON object"))
        if name == "statuses" and set(faults["error_ids"]) & set(body.get("apInfIds") or []):
            return self._send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        status, answer = getattr(self.state, name)(body)
        if mode == "timeout":
            time.sleep(faults["hang"])
        return self._send(status, answer)

    def _page(self) -> str:
        with self.state.lock:
            self.state._auto_decide()
            docs = sorted(self.state.documents.values(), key=lambda d: -d["receivedAt"])[:200]
        rows = []
        labels = {
            -2: "encrypting",
            -1: "reserved",
            0: "held",
            1: "in progress",
            2: "approved",
            3: "rejected",
            4: "withdrawn",
            5: "approved (전결)",
            6: "approved (후완결)",
        }
        for doc in docs:
            buttons = ""
            if doc["status"] in IN_PROGRESS:
                buttons = "".join(
                    f'<form method="post" action="/ui/decide" style="display:inline">'
                    f'<input type="hidden" name="apInfId" value="{html.escape(doc["apInfId"])}">'
                    f'<button name="decision" value="{d}">{d}</button></form> '
                    for d in DECISIONS
                )
            approvers = ", ".join(html.escape(str(a.get("epId"))) for a in doc["aplns"])
            rows.append(
                f"<tr><td><code>{html.escape(doc['apInfId'])}</code></td><td>{html.escape(doc['subject'])}</td>"
                f"<td>{approvers}</td><td>{labels.get(doc['status'], doc['status'])}</td><td>{buttons}</td>"
                f'<td><details><summary>contents</summary><iframe sandbox srcdoc="{html.escape(doc["contents"])}" '
                f'style="width:480px;height:240px"></iframe></details></td></tr>'
            )
        body = "".join(rows) or '<tr><td colspan="6">No documents yet.</td></tr>'
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Knox simulator</title>"
            "<meta http-equiv='refresh' content='15'>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd;"
            "text-align:left;vertical-align:top}</style></head><body>"
            "<h1>Knox approval simulator</h1><p>Documents submitted by Bureau. Approve, reject or withdraw them; "
            "Bureau's poller picks the decision up within a minute.</p>"
            f"<table><tr><th>apInfId</th><th>subject</th><th>approvers</th><th>status</th><th></th><th></th></tr>"
            f"{body}</table></body></html>"
        )


def make_server(
    *,
    host: str,
    port: int,
    state: SimulatorState,
    paths: dict[str, str],
) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"state": state, "paths": paths})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
