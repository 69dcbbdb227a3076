"""Optional bearer-token authentication for deployments (`MASSIVE_SERVICE_TOKEN`).

Unset, the service is open, as the UI is on a developer's machine. Set, every endpoint but
`/health` (and the OpenAPI document and its pages) wants `Authorization: Bearer <token>`, and
answers 401 without it or with another token. `/health` stays open so that a load balancer or a
compose health check can probe it without the secret; it reveals only states and masked URLs.
The comparison takes constant time, so the token cannot be guessed byte by byte.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="MASSIVE_SERVICE_TOKEN, when the deployment sets one")


def require_token(token: str | None) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    """A dependency checking the bearer token (a no-op when `token` is None)."""

    def check(credentials: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:  # noqa: B008
        if token is None:
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "authorization: this service wants `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(
                401,
                "authorization: the bearer token is not this service's",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check
