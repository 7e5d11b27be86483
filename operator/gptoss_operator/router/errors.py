"""Errors the router answers with, in OpenAI's error body shape.

Exception tree::

    RouterError                 an answer for the client (status, type, code, message)
    ├── BadRequestError         400 malformed JSON, no ``model``, wrong field types
    ├── BodyTooLargeError       413 body above ``server.maxBodyBytes``
    ├── ModelNotFoundError      404 no route for the requested model
    ├── NotFoundError           404 unknown path
    ├── MethodNotAllowedError   405
    └── UnavailableError        503 no backend may serve (residency, keys, health) or all failed

Upstream failures during an attempt are ``upstream.AttemptFailure`` (they decide fallback) and
become an ``UnavailableError`` or the upstream's own answer when attempts run out.
"""

from __future__ import annotations

import json


class RouterError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)


class BadRequestError(RouterError):
    status = 400
    type = "invalid_request_error"


class BodyTooLargeError(RouterError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class ModelNotFoundError(RouterError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFoundError(RouterError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowedError(RouterError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class UnavailableError(RouterError):
    status = 503
    type = "service_unavailable"
    code = "no_backend_available"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` as the OpenAI API returns it."""
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()
