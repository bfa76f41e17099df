"""What every answer of the status API goes through: JSON errors, the write token, CORS, scrubbing.

Errors are `{"error": {"code": <stable code>, "message": <text>}}`. Writes need
`Authorization: Bearer <API_TOKEN>`, compared in constant time; with no API_TOKEN configured every
write is refused (403) with the way to set one. Read endpoints carry `Access-Control-Allow-Origin: *`
(as the original did), writes never. A last pass replaces any configured secret (SQL/Mongo
passwords, the token) and any `scheme://user:password@` in an answer's body by `***`.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from core.settings import Settings

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    500: "internal_error",
    503: "unavailable",
}
_URL_PASSWORD = re.compile(rb"(//[^/@:\s\"']*:)[^/@\s\"']*@")
_WRITE_ATTR = "_ingestor_write"
_SCRUBBED_ATTR = "_ingestor_scrubbed"


def error(status: int, message: str, code: str | None = None) -> tuple[Response, int]:
    return jsonify({"error": {"code": code or CODES.get(status, "error"), "message": message}}), status


def redact_url(url: str) -> str:
    """`mysql://user:password@host:port` shown as `mysql://user@host:port`."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    user = f"{parsed.username}@" if parsed.username else ""
    return parsed._replace(netloc=f"{user}{host}{port}").geturl()


def secrets_of(settings: Settings) -> list[bytes]:
    """The literal secrets no answer may contain (at least 4 characters, to avoid noise)."""
    found = [settings.API_TOKEN]
    for url in (settings.SQL_URL, settings.MONGO_URL):
        parsed = urlparse(url)
        # A password equal to the user name is not scrubbed: the user name is shown anyway.
        if parsed.password and parsed.password != parsed.username:
            found.extend([parsed.password, unquote(parsed.password)])
    return sorted({s.encode() for s in found if len(s) >= 4}, key=len, reverse=True)


def write(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Marks a view as a write: it needs the token, and gets no CORS header."""
    setattr(view, _WRITE_ATTR, True)
    return view


def install(app: Flask, settings: Callable[[], Settings]) -> None:
    """Error handlers, the token check before writes, CORS and scrubbing after every answer."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        response, _ = error(status, exc.description or exc.name)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response, status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.exception("status API: unexpected error")
        return error(500, f"internal error ({type(exc).__name__})")

    @app.before_request
    def check_token() -> ResponseReturnValue | None:
        view = app.view_functions.get(request.endpoint or "")
        if view is None or not getattr(view, _WRITE_ATTR, False) or request.method == "OPTIONS":
            return None
        token = settings().API_TOKEN
        if not token:
            return error(
                403,
                "writes are disabled: no API_TOKEN is configured. Set API_TOKEN in config.py "
                "(or the INGESTOR_API_TOKEN environment variable) and restart the daemon (or send "
                "it SIGHUP), then send 'Authorization: Bearer <API_TOKEN>'",
                "no_token_configured",
            )
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            response, status = error(401, "this needs 'Authorization: Bearer <API_TOKEN>'", "token_missing")
            response.headers["WWW-Authenticate"] = 'Bearer realm="ingestor"'
            return response, status
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            response, status = error(401, "the token is not the configured API_TOKEN", "token_invalid")
            response.headers["WWW-Authenticate"] = 'Bearer realm="ingestor", error="invalid_token"'
            return response, status
        return None

    @app.after_request
    def finish(response: Response) -> Response:
        view = app.view_functions.get(request.endpoint or "")
        is_write = view is not None and getattr(view, _WRITE_ATTR, False)
        if request.method in ("GET", "HEAD") and not is_write:
            response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        if not response.direct_passthrough and not getattr(response, _SCRUBBED_ATTR, False):
            body = response.get_data()
            clean = scrub(body, settings())
            if clean != body:
                response.set_data(clean)
        return response


def scrub(body: bytes, settings: Settings) -> bytes:
    """The body with every configured secret and any URL's password replaced by `***`."""
    clean = _URL_PASSWORD.sub(rb"\1***@", body)
    for secret in secrets_of(settings):
        clean = clean.replace(secret, b"***")
    return clean


def scrubbed(body: bytes, content_type: str, status: int = 200) -> Response:
    """An answer whose body already went through `scrub` (built once, given out many times): the
    last pass over every answer leaves it as it is."""
    response = Response(body, status=status, content_type=content_type)
    setattr(response, _SCRUBBED_ATTR, True)
    return response


def json_body() -> dict[str, Any]:
    """The request's JSON object, or {} when there is no body."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}
