"""Exceptions that cross RPC as their own types (nameko ``deserialize_to_instance``)."""
from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class CrmhubError(Exception):
    """Base of the errors a caller can act on; ``status`` is the HTTP status at the edge."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str = "", details=None):
        # nameko sends the args across RPC as text: a None among them would come back "None".
        super().__init__(*((message,) if details is None else (message, details)))
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        body = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


@deserialize_to_instance
class InvalidInput(CrmhubError):
    status = 400
    code = "invalid_input"


@deserialize_to_instance
class NotFound(CrmhubError):
    status = 404
    code = "not_found"


@deserialize_to_instance
class Conflict(CrmhubError):
    status = 409
    code = "conflict"


class PermanentError(Exception):
    """Raised by an event handler for a message no retry can fix: parked at once."""


@deserialize_to_instance
class Unauthenticated(CrmhubError):
    status = 401
    code = "unauthenticated"


@deserialize_to_instance
class PermissionDenied(CrmhubError):
    status = 403
    code = "forbidden"


@deserialize_to_instance
class Unavailable(CrmhubError):
    """A dependency (broker, another service) is down: retry later."""

    status = 503
    code = "unavailable"


@deserialize_to_instance
class PbxRefused(CrmhubError):
    """The PBX refused a command (click-to-call); the message is the PBX's reason."""

    status = 502
    code = "pbx_refused"


@deserialize_to_instance
class PbxUnavailable(CrmhubError):
    """The PBX could not be reached."""

    status = 503
    code = "pbx_unavailable"
