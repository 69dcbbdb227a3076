"""How the service says no: one JSON line naming what was wrong, with the right status code.

Every error answer is `{"detail": "<one line>"}` (plus `parameter` when a parameter is at fault):
a bad parameter is 422 naming it (400 for a cursor this service did not issue), an unknown symbol
404 naming it, a store or Dagster instance that cannot be reached 503 naming it by its masked URL
or directory. FastAPI's own validation errors are reworded the same way, without echoing the
input back. Nothing here ever formats a configuration value other than through `mask_url`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from massive_pipeline.core.catalog import UnknownSymbolError
from massive_pipeline.store.errors import StoreError

_log = logging.getLogger("massive_pipeline.service")


class ServiceError(Exception):
    """An answer other than 2xx, with its status code and one-line message."""

    status_code = 500

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter

    def body(self) -> dict[str, str]:
        out = {"detail": self.message}
        if self.parameter is not None:
            out["parameter"] = self.parameter
        return out


class BadParameter(ServiceError):
    """A query or body parameter that cannot be used; the message starts with its name."""

    status_code = 422

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}", parameter=parameter)


class BadCursor(BadParameter):
    """A cursor this service did not issue, or issued for another series."""

    status_code = 400


class NotFound(ServiceError):
    status_code = 404


class Unavailable(ServiceError):
    """A backend the answer needs (store, Dagster instance) cannot be reached."""

    status_code = 503


def unknown_symbol(exc: UnknownSymbolError, parameter: str = "symbol") -> NotFound:
    return NotFound(str(exc), parameter=parameter)


def _validation_line(exc: RequestValidationError) -> tuple[str, str | None]:
    """FastAPI's first validation error as `name: problem` (the location's last part names it)."""
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path", "header")]
    name = ".".join(loc) or "body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{name}: {first.get('msg', 'invalid value')}{more}", name


def install_error_handlers(app: FastAPI) -> None:
    """Map the service's, the catalog's and the store's errors to their answers."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(UnknownSymbolError)
    async def _unknown_symbol(_request: Request, exc: UnknownSymbolError) -> JSONResponse:
        error = unknown_symbol(exc)
        return JSONResponse(error.body(), status_code=error.status_code)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        # the store's messages name it by its masked URL and fit on one line
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the type only: an unexpected message could carry anything; the traceback goes to the log
        _log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the service's log"}, status_code=500
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, name = _validation_line(exc)
        body = {"detail": message} if name is None else {"detail": message, "parameter": name}
        return JSONResponse(body, status_code=422)
