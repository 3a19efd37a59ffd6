"""Business errors that carry their HTTP status; the app turns them into JSON or pages."""

from __future__ import annotations


class LinliError(Exception):
    """A business error with an HTTP status, a stable code and a message for people."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.row = row

    def to_dict(self) -> dict[str, object]:
        """The JSON body of this error."""
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.row is not None:
            body["row"] = self.row
        return body


class NotFound(LinliError):
    """The thing does not exist, or the caller may not know it exists."""

    status_code = 404
    code = "not_found"


class Forbidden(LinliError):
    """The caller is known but lacks the permission."""

    status_code = 403
    code = "forbidden"


class Unauthorized(LinliError):
    """No valid credentials."""

    status_code = 401
    code = "unauthorized"


class Conflict(LinliError):
    """The change conflicts with existing data."""

    status_code = 409
    code = "conflict"


class Invalid(LinliError):
    """Input failed validation; `field` names what is wrong."""

    status_code = 422
    code = "invalid"


class TooLarge(LinliError):
    """The upload is larger than allowed."""

    status_code = 413
    code = "too_large"


class Relayed(LinliError):
    """A business error raised in another process (an ingest process), answered as it was raised there.

    Business errors have their own constructors and do not all survive pickling; this one carries the
    status, code and JSON body they answer with.
    """

    def __init__(self, message: str, *, status_code: int, body: dict[str, object]) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = str(body.get("code", self.code))
        self.body = body

    @classmethod
    def of(cls, exc: LinliError) -> Relayed:
        """The error as another process answers it."""
        return cls(exc.message, status_code=exc.status_code, body=exc.to_dict())

    def to_dict(self) -> dict[str, object]:
        """The JSON body the error was raised with."""
        return dict(self.body)

    def __reduce__(self) -> tuple[object, ...]:
        return (_relayed, (self.message, self.status_code, self.body))


def _relayed(message: str, status_code: int, body: dict[str, object]) -> Relayed:
    return Relayed(message, status_code=status_code, body=body)
