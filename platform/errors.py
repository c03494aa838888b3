"""Every known error, mapped to RFC 9457 problem details in one place.

Services raise the ``Problem`` subclasses below (or an engine's own exceptions, which are
translated here). Anything else that escapes is a bug: it is logged and answered with a
generic 500 that leaks nothing.

Two answers are produced before an endpoint runs, and are made to say the same as the rest:

* **405** (and ``OPTIONS``): Starlette's router answers with the methods of the *first* route
  whose path matches, while one path is often served by several routes (``GET`` and ``POST``
  of ``/api/records/{app}/{form}`` are two). ``Allow`` is recomputed here from every route
  matching the path, so it names exactly what the resource supports; ``OPTIONS`` is answered
  204 with that header.
* **Unreadable HTTP** (a request line or headers larger than the HTTP parser buffers, bad
  framing): uvicorn answers a plain-text 400 before the application sees anything.
  ``ProblemH11Protocol`` is uvicorn's h11 protocol with that answer in problem details; the
  CLI's ``serve`` uses it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import h11
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from uvicorn.protocols.http.h11_impl import H11Protocol

from formloom.engines.forms import FieldError, RecordInvalid
from formloom.engines.forms.record import MAX_ERRORS
from formloom.engines.logic import LogicError

log = logging.getLogger("formloom")

PROBLEM_JSON = "application/problem+json"


def shown(text: str, limit: int = 80) -> str:
    """A client-supplied string made safe to echo in a message: short, encodable, no NUL."""
    safe = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    return safe.replace("\x00", "\\u0000") + ("…" if len(text) > limit else "")


class Problem(Exception):
    """An error a client can act on. ``errors`` lists the individual problems, each with a
    JSON pointer (``path``) into the request or document that caused it."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
        audit: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}
        #: An audit row (action, app, form, ...) the handler writes in its own transaction
        #: (the request's rolls back): refusals, and probes of what the caller may not see.
        self.audit = audit
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    """No usable credentials. The detail never says which part of a credential was wrong."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str = "Sign in to continue.", **kwargs: Any) -> None:
        headers = kwargs.pop("headers", None) or {}
        headers.setdefault("WWW-Authenticate", "Bearer")
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(Problem):
    """Signed in, but not allowed (usually with an ``audit`` row)."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class Gone(Problem):
    status = 410
    slug = "gone"
    title = "Gone"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(Problem):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class TooManyRequests(Problem):
    """Throttled (e.g. too many failed sign-ins); ``Retry-After`` says when to try again."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", None) or {}
        headers["Retry-After"] = str(max(1, retry_after))
        super().__init__(detail, headers=headers, **kwargs)


class PayloadTooLarge(Problem):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class Unprocessable(Problem):
    status = 422
    slug = "validation-failed"
    title = "Validation failed"


class InvalidDefinition(Unprocessable):
    slug = "invalid-definition"
    title = "Invalid app definition"


def field_errors(errors: Sequence[FieldError]) -> list[dict[str, Any]]:
    return [
        {"field": e.field, "path": e.path, "code": e.code, "message": e.message} for e in errors
    ]


def record_invalid(exc: RecordInvalid) -> Unprocessable:
    count = len(exc.errors)
    if exc.truncated or count > MAX_ERRORS:
        # Validation stopped looking, or found more than a person reads: say there is more.
        listed = exc.errors[:MAX_ERRORS]
        return Unprocessable(
            f"More than {len(listed)} values are not valid; the first {len(listed)} are listed.",
            errors=field_errors(listed),
            truncated=True,
        )
    noun = "field is" if count == 1 else "fields are"
    return Unprocessable(f"{count} {noun} not valid.", errors=field_errors(exc.errors))


def _location(loc: Sequence[Any]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def _request_validation(exc: RequestValidationError) -> Problem:
    errors = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            position = (err.get("ctx") or {}).get("error", "")
            return BadRequest(f"The request body is not valid JSON: {position}".rstrip(": "))
        source = loc[0] if loc else "body"
        errors.append(
            {
                "in": source,
                "path": _location(loc[1:]),
                "code": err.get("type", "invalid"),
                "message": err.get("msg", "Invalid value"),
            }
        )
    return Unprocessable("The request is not valid.", errors=errors)


def _respond(request: Request, problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        if exc.audit is not None:
            await audit_refusal(request, exc.audit)
        else:
            await _audit_rejected_account_change(request, exc)
        return _respond(request, exc)

    @app.exception_handler(RecordInvalid)
    async def _invalid(request: Request, exc: RecordInvalid) -> JSONResponse:
        return _respond(request, record_invalid(exc))

    @app.exception_handler(LogicError)
    async def _logic(request: Request, exc: LogicError) -> JSONResponse:
        return _respond(request, BadRequest(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = _request_validation(exc)
        await _audit_rejected_account_change(request, problem)
        return _respond(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            documented = request.app.openapi().get("paths", {})
            allowed = allowed_methods(request.app.router.routes, request.scope, documented)
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": ", ".join(allowed)})
            headers["Allow"] = ", ".join(allowed)
        problem = Problem(str(exc.detail), headers=headers)
        problem.status = exc.status_code
        problem.title = _TITLES.get(exc.status_code, "Error")
        problem.slug = problem.title.lower().replace(" ", "-")
        return _respond(request, problem)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette re-raises after this answer and the server then drops the connection:
        # say so, so that a keep-alive client does not send its next request into it.
        problem = Problem(
            "An unexpected error occurred; it has been logged.", headers={"Connection": "close"}
        )
        problem.status, problem.title, problem.slug = 500, "Internal error", "internal-error"
        return _respond(request, problem)


#: How long a connection refused as unreadable HTTP still takes (and drops) input.
LINGER_SECONDS = 2.0
#: The order methods are listed in ``Allow``.
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(
    routes: Sequence[BaseRoute], scope: Any, documented: Mapping[str, Any] | None = None
) -> list[str]:
    """Every method some route fully matches at the request's path (``OPTIONS`` included:
    it is answered for every resource), in a fixed order. The router is asked once per
    method with a fresh scope, so nested routers of any kind are covered.

    Where path templates overlap (``/api/apps/import`` is also ``/api/apps/{app}``), the
    resource is the most specific documented template (``documented``: OpenAPI ``paths``):
    ``Allow`` names its methods only, not those of a template the path merely fits."""
    path = scope["path"]
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    allowed = {"OPTIONS"}
    for method in _METHOD_ORDER[:-1]:
        probe = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": root_path,
            "headers": scope.get("headers", []),
            "query_string": scope.get("query_string", b""),
            "app": scope.get("app"),
        }
        for route in routes:
            # StaticFiles takes any method at the routing level and refuses all but two.
            static = isinstance(route, Mount) and isinstance(route.app, StaticFiles)
            if static and method not in ("GET", "HEAD"):
                continue
            if route.matches(probe)[0] is Match.FULL:
                allowed.add(method)
                break
    resource = _most_specific(documented or {}, path[len(root_path) :] or "/")
    if resource is not None:
        named = {method.upper() for method in resource} | {"OPTIONS"}
        # HEAD goes with GET where the router serves it.
        named |= {"HEAD"} & allowed if "GET" in named else set()
        allowed &= named
    return [method for method in _METHOD_ORDER if method in allowed]


def _most_specific(paths: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The path item of the template ``path`` fits with the most literal segments."""
    segments = path.split("/")
    best: tuple[int, Mapping[str, Any]] | None = None
    for template, item in paths.items():
        parts = template.split("/")
        if len(parts) != len(segments):
            continue
        literal = 0
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    break
            elif part == segment:
                literal += 1
            else:
                break
        else:
            if best is None or literal > best[0]:
                best = (literal, item)
    return None if best is None else best[1]


class ProblemH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering a request it cannot parse with problem details
    instead of plain text. Reached, for example, by a request line over the parser's buffer
    (a ``filter`` nested thousands of levels deep in the query string)."""

    _refused = False

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {
                "type": "/problems/bad-request",
                "title": "Bad request",
                "status": 400,
                "detail": "The request could not be read as HTTP/1.1: it is malformed, or its "
                "request line or headers are too long (send a long filter in the body of "
                "POST .../query instead).",
            }
        ).encode()
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        # A lingering close: closing a socket with unread input resets the connection, and
        # a client still sending its long request line would lose the answer. So stop
        # writing, drop what still arrives for a moment, then close.
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)


async def audit_refusal(request: Request, event: dict[str, Any]) -> None:
    """A refused request is audited in its own unit of work: the request's rolled back."""
    from formloom.platform.audit.log import audit_now
    from formloom.platform.auth.principal import ANONYMOUS

    platform = getattr(request.app.state, "platform", None)
    if platform is None:
        return
    principal = getattr(request.state, "principal", ANONYMOUS)
    event = {"outcome": "denied", **event}
    event.setdefault("detail", {})
    event["detail"] = {**event["detail"], "method": request.method, "path": request.url.path}
    try:
        await audit_now(platform.db, principal, at=platform.clock.now(), **event)
    except Exception:  # noqa: BLE001 - the refusal must still be answered
        log.exception("could not write the audit row of a refused request")


#: Where a refused request is worth an audit row of its own: account management (a user
#: with a header-injecting name, a role the app does not declare) and sign-in.
_ACCOUNT_PATHS = {"/api/users": "user.refused", "/api/auth": "auth.refused"}


async def _audit_rejected_account_change(request: Request, problem: Problem) -> None:
    """Bad input to account endpoints (400/409/422) is audited with the pointers and codes
    of what was wrong — never the values, which may be a password."""
    if request.method in ("GET", "HEAD") or problem.status not in (400, 409, 422):
        return
    path = request.url.path
    action = next((a for prefix, a in _ACCOUNT_PATHS.items() if path.startswith(prefix)), None)
    if action is None:
        return
    await audit_refusal(
        request,
        {
            "action": action,
            "outcome": "failed",
            "detail": {
                "status": problem.status,
                "errors": [
                    {"path": e.get("path"), "code": e.get("code")} for e in problem.errors[:20]
                ],
            },
        },
    )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Too many requests",
}
