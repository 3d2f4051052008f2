"""The study server: a Starlette app (served by uvicorn) over the study folder.

URLs (TOKEN and ADMIN are the study's secrets from ``study.json``; anything else is a 404)::

    /s/TOKEN/                          instructions, then the comparisons (static page)
    /s/TOKEN/static/PATH               the page's JS/CSS (package data)
    POST /s/TOKEN/api/raters           {"name"} → {"rater": KEY, ...}; plans the rater's trials
    GET  /s/TOKEN/api/next?rater=KEY   the rater's next trial and progress
    POST /s/TOKEN/api/votes            {"rater", "assignment", "vote", "factor"} → next trial
    /s/TOKEN/media/ID/left|right?rater=KEY   the videos of one of the rater's assignments
    /admin/ADMIN/                      results page;  /admin/ADMIN/votes.csv  the export

Media URLs name an assignment, never a method or a file, so the page does not tell a rater
which method is which, and a file is served only when it lies in the study's own video folders
(:func:`vqe.study.files.safe_file`). Every vote is checked: the rater's key, that the assignment
is theirs, the vote an integer 1–5, the factor one of the known ones, and one vote per
assignment (409 for a second).

Limits, so no request can exhaust the server or make it fail (500):

* request bodies are at most :data:`MAX_BODY` (64 KiB): a larger ``content-length`` is answered
  413 before a byte is read, and a body without one (chunked) is read only until it passes the
  limit, then 413 — a 100 MB upload is never held in memory;
* a body that is not a JSON object — not JSON, not UTF-8, nested deeper than Python's parser
  goes — is a 400; an id beyond SQLite's 64-bit integers names no assignment (404); text that
  UTF-8 cannot hold (lone surrogates) is refused like any other bad value;
* assignments are released after ``assignment_timeout`` (default :data:`ASSIGNMENT_TIMEOUT`,
  30 min; ``serve --assignment-timeout``): a rater idle that long (no vote, no trial fetched)
  no longer holds their unvoted comparisons against new raters, but may still come back and
  vote on them (:mod:`vqe.study.db`). The clock is injectable (``now``) for tests.

``serve`` binds its port before printing the URLs and hands that socket to uvicorn, so a port
in use is a one-line error (exit 1) and nothing is printed that would not work.
"""

from __future__ import annotations

import errno
import json
import math
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vqe.preference.bradley_terry import FACTORS
from vqe.study.config import (
    DB_NAME,
    GOLD_DIR,
    VIDEOS_DIR,
    StudyConfig,
    StudyError,
    read_config,
)
from vqe.study.db import (
    Assignment,
    VoteRejected,
    add_rater,
    assignment_of,
    connect,
    fill_empty_rater,
    is_text,
    next_assignment,
    progress,
    rater_by_key,
    record_vote,
)
from vqe.study.design import DEGRADED, Trial, plan_rater
from vqe.study.files import safe_file

STATIC = Path(__file__).parent / "static"
MAX_NAME = 64
#: The largest request body read: the API's bodies are a few hundred bytes.
MAX_BODY = 64 * 1024
#: Seconds a rater may be idle before their unvoted assignments go to new raters.
ASSIGNMENT_TIMEOUT = 30 * 60.0
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the token is in every URL
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
        b"style-src 'self' 'unsafe-inline'; connect-src 'self'",
    ),
]


class SecurityHeaders:
    """Adds the headers above to every response (pure ASGI, so file streaming is untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def _not_found(_: Any = None) -> Response:
    return PlainTextResponse("not found", status_code=404)


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class RequestRefused(Exception):
    """A request body the API does not read (too large) or cannot use; ``status`` to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_TOO_LARGE = f"the request body is over the {MAX_BODY // 1024} KiB limit"


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, read only while it stays within ``limit`` bytes (413 otherwise)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise RequestRefused(400, "content-length must be a number of bytes")
        if len(declared) > 20 or int(declared) > limit:
            raise RequestRefused(413, _TOO_LARGE)
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives, not after
        body += chunk
        if len(body) > limit:
            raise RequestRefused(413, _TOO_LARGE)
    return bytes(body)


async def read_json_object(request: Request, shape: str) -> dict:
    """The body as a JSON object; :class:`RequestRefused` (400, 413) naming ``shape``."""
    body = await read_body(request)
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8; nesting too deep
        raise RequestRefused(400, f"the body must be a JSON object {shape}") from error
    if not isinstance(value, dict):
        raise RequestRefused(400, f"the body must be a JSON object {shape}")
    return value


def check_timeout(seconds: float) -> float:
    if not seconds > 0:  # also refuses NaN
        raise StudyError(
            f"--assignment-timeout must be a number of seconds > 0 (inf: never release), "
            f"got {seconds}"
        )
    return float(seconds)


class StudyServer:
    def __init__(
        self,
        root: str | Path,
        assignment_timeout: float = ASSIGNMENT_TIMEOUT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.config: StudyConfig = read_config(self.root)
        self.assignment_timeout = check_timeout(assignment_timeout)
        self.idle_after = None if math.isinf(self.assignment_timeout) else self.assignment_timeout
        self.now = now
        self._local = threading.local()
        connect(self.root / DB_NAME).close()  # fail at start, not at the first rater

    # -- helpers ------------------------------------------------------------------------------

    def _db(self):  # one connection per server thread (sqlite3 connections are not shared)
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = connect(self.root / DB_NAME)
        return connection

    def _study_token(self, request: Request) -> bool:
        return secrets.compare_digest(str(request.path_params["token"]), self.config.token)

    def _admin_token(self, request: Request) -> bool:
        return secrets.compare_digest(str(request.path_params["token"]), self.config.admin_token)

    def _plan(self, assigned: list[Trial]) -> list[Trial]:
        # Seeded by the study and how far it is, so a replayed join order replays the plan.
        rng = random.Random(f"{self.config.seed}/{len(assigned)}")
        return plan_rater(self.config, assigned, rng)

    def _trial_json(self, rater_key: str, assignment: Assignment | None, rater_id: int) -> dict:
        if assignment is None:
            done, total = progress(self._db(), rater_id)
            return {"done": True, "voted": done, "total": total, "full": total == 0}
        base = f"media/{assignment.id}"
        return {
            "done": False,
            "voted": assignment.done,
            "total": assignment.total,
            "assignment": assignment.id,
            "left": f"{base}/left?rater={rater_key}",
            "right": f"{base}/right?rater={rater_key}",
        }

    # -- pages --------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        if not self._study_token(request):
            return _not_found()
        if not request.url.path.endswith("/"):  # the page's relative URLs need the slash
            return RedirectResponse(request.url.path + "/", status_code=308)
        return FileResponse(STATIC / "study.html", headers={"cache-control": "no-store"})

    async def static(self, request: Request) -> Response:
        if not self._study_token(request):
            return _not_found()
        path = safe_file(STATIC, request.path_params["path"])
        return FileResponse(path) if path is not None else _not_found()

    async def media(self, request: Request) -> Response:
        if not self._study_token(request):
            return _not_found()
        side = request.path_params["side"]
        if side not in ("left", "right"):
            return _not_found()

        def lookup() -> Path | None:
            rater = rater_by_key(self._db(), request.query_params.get("rater", ""))
            if rater is None:
                return None
            row = assignment_of(self._db(), rater["id"], request.path_params["assignment"])
            if row is None:
                return None
            method, video = row[f"{side}_method"], row["video"]
            if method == DEGRADED:
                return safe_file(self.root / GOLD_DIR, video)
            if method not in self.config.methods:
                return None
            return safe_file(self.root / VIDEOS_DIR / method, video)

        path = await run_in_threadpool(lookup)
        return FileResponse(path) if path is not None else _not_found()

    # -- API ----------------------------------------------------------------------------------

    async def new_rater(self, request: Request) -> Response:
        if not self._study_token(request):
            return _not_found()
        try:
            body = await read_json_object(request, '{"name": ...}')
        except RequestRefused as error:
            return _bad(str(error), error.status)
        name = body.get("name", "")
        if not is_text(name) or len(name.strip()) > MAX_NAME:
            return _bad(f"name must be text of at most {MAX_NAME} characters")
        name = " ".join(name.split())

        def create() -> dict:
            rater_id, key, total = add_rater(
                self._db(), name, self._plan, self.now, self.idle_after
            )
            return {"rater": key, "id": rater_id, "total": total, "full": total == 0}

        return JSONResponse(await run_in_threadpool(create), status_code=201)

    async def next_trial(self, request: Request) -> Response:
        if not self._study_token(request):
            return _not_found()
        key = request.query_params.get("rater", "")

        def find() -> dict | None:
            rater = rater_by_key(self._db(), key)
            if rater is None:
                return None
            assignment = next_assignment(self._db(), rater["id"], self.now)
            if assignment is None and fill_empty_rater(  # joined a full study: any freed since?
                self._db(), rater["id"], self._plan, self.now, self.idle_after
            ):
                assignment = next_assignment(self._db(), rater["id"], self.now)
            return self._trial_json(key, assignment, rater["id"])

        answer = await run_in_threadpool(find)
        if answer is None:
            return _bad("unknown rater; start again from the study page", 403)
        return JSONResponse(answer, headers={"cache-control": "no-store"})

    async def vote(self, request: Request) -> Response:
        if not self._study_token(request):
            return _not_found()
        try:
            body = await read_json_object(request, "{rater, assignment, vote, factor}")
        except RequestRefused as error:
            return _bad(str(error), error.status)
        key, assignment, vote = body.get("rater"), body.get("assignment"), body.get("vote")
        factor = body.get("factor", "")
        if not is_text(key):
            return _bad("rater must be the rater's key (text)", 403)
        if type(assignment) is not int:  # bool is an int subclass: refuse it too
            return _bad(f"assignment must be an integer id, got {assignment!r}")
        if type(vote) is not int or not 1 <= vote <= 5:
            return _bad(f"vote must be an integer 1–5, got {vote!r}")
        if factor is None:
            factor = ""
        if not isinstance(factor, str) or factor not in ("", *FACTORS):
            return _bad(f"factor must be one of {list(FACTORS)} or empty, got {factor!r}")

        def store() -> dict | None:
            rater = rater_by_key(self._db(), key)
            if rater is None:
                return None
            record_vote(self._db(), rater["id"], assignment, vote, factor, self.now)
            following = next_assignment(self._db(), rater["id"], self.now)
            return self._trial_json(key, following, rater["id"])

        try:
            answer = await run_in_threadpool(store)
        except VoteRejected as error:
            return _bad(str(error), error.status)
        if answer is None:
            return _bad("unknown rater; start again from the study page", 403)
        return JSONResponse(answer, headers={"cache-control": "no-store"})

    # -- results ------------------------------------------------------------------------------

    async def results(self, request: Request) -> Response:
        if not self._admin_token(request):
            return _not_found()
        from vqe.study.report import plot_png, render_results, study_results

        def build() -> str:
            results = study_results(self.root)
            return render_results(results, plot_png(results))

        return HTMLResponse(await run_in_threadpool(build), headers={"cache-control": "no-store"})

    async def votes_csv(self, request: Request) -> Response:
        if not self._admin_token(request):
            return _not_found()
        from vqe.study.report import study_results

        def build() -> str:
            return study_results(self.root, n_bootstrap=2).votes.to_csv(index=False)

        text = await run_in_threadpool(build)
        return PlainTextResponse(text, media_type="text/csv")


def create_app(
    root: str | Path,
    assignment_timeout: float = ASSIGNMENT_TIMEOUT,
    now: Callable[[], float] = time.time,
) -> ASGIApp:
    server = StudyServer(root, assignment_timeout, now)
    routes = [
        Route("/s/{token}", server.page),
        Route("/s/{token}/", server.page),
        Route("/s/{token}/static/{path:path}", server.static),
        Route("/s/{token}/media/{assignment:int}/{side}", server.media),
        Route("/s/{token}/api/raters", server.new_rater, methods=["POST"]),
        Route("/s/{token}/api/next", server.next_trial),
        Route("/s/{token}/api/votes", server.vote, methods=["POST"]),
        Route("/admin/{token}/", server.results),
        Route("/admin/{token}/votes.csv", server.votes_csv),
    ]
    app = Starlette(routes=routes, exception_handlers={404: lambda request, exc: _not_found()})
    return SecurityHeaders(app)


def urls(config: StudyConfig, host: str, port: int) -> tuple[str, str]:
    """(rater URL, results URL)."""
    shown = f"[{host}]" if ":" in host else host
    return (
        f"http://{shown}:{port}/s/{config.token}/",
        f"http://{shown}:{port}/admin/{config.admin_token}/",
    )


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (uvicorn serves it), or a one-line :class:`StudyError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: quick restarts
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the queue until uvicorn accepts them
    except (OSError, OverflowError) as error:  # OverflowError: a port beyond 65535
        sock.close()
        if getattr(error, "errno", None) == errno.EADDRINUSE:
            message = f"port {port} on {host} is in use; choose another with --port"
            raise StudyError(message) from None
        reason = getattr(error, "strerror", None) or error
        raise StudyError(
            f"cannot listen on {host} port {port} ({reason}); check --host and --port"
        ) from None
    return sock


def serve(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    assignment_timeout: float = ASSIGNMENT_TIMEOUT,
) -> None:
    import uvicorn

    app = create_app(root, assignment_timeout)  # a bad study or setting fails here, first
    sock = listen_socket(host, port)  # then the port, still before any URL is printed
    try:
        bound = sock.getsockname()[1]  # the real port when --port 0
        rater_url, admin_url = urls(read_config(root), host, bound)
        print(f"raters:  {rater_url}\nresults: {admin_url}", flush=True)
        config = uvicorn.Config(app, host=host, port=bound, log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])  # the bound socket: no race for the port
    finally:
        sock.close()
