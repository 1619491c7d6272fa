"""What can go wrong with a model call, whatever the backend that made it.

Two families. `ModelUnavailable` and `ModelRequestRejected` leave the classifier: the
pipeline keeps a message queued while the model is unavailable, and reports a rejected
request. `EndpointFailure` and `EndpointTimedOut` stay inside it: the backends raise them,
and the shared retry rules (bot/classifier/classifier.py) turn them into a retry on this
or another endpoint, a ModelUnavailable, or a verdict that needs human review.
"""

from __future__ import annotations


class ModelUnavailable(RuntimeError):
    """No model server can answer now: unreachable, overloaded, refusing our credentials, or without the model."""

    def __init__(self, message: str, *, missing_model: bool = False) -> None:
        super().__init__(message)
        self.missing_model = missing_model


class ModelRequestRejected(RuntimeError):
    """The server refused the request itself (a 4xx such as 400 or 422): retrying cannot help."""


class EndpointFailure(Exception):
    """One endpoint could not take the call: unreachable, a 5xx or 429, no such model, credentials refused.

    The endpoint is at fault, not the message: the call may go to another endpoint, or to
    this one later. `problem` is written for the operator and says what to do. A failure
    only the operator can fix (the model is not pulled, the key is refused) is not
    `transient`: once no endpoint is left it is reported at once, not retried blindly.
    """

    def __init__(self, endpoint: str, problem: str, *, missing_model: bool = False, transient: bool = True) -> None:
        super().__init__(problem)
        self.endpoint = endpoint
        self.problem = problem
        self.missing_model = missing_model
        self.transient = transient and not missing_model


class EndpointTimedOut(Exception):
    """The call reached the server but no answer came before the deadline.

    Unlike an unreachable server (the message waits in the queue), a stuck call is retried
    a bounded number of times and then handed to a human, so one message can never hold
    the queue forever.
    """

    def __init__(self, endpoint: str, seconds: float, *, model: str = "") -> None:
        super().__init__(f"timed out after {seconds:g} s")
        self.endpoint = endpoint
        self.seconds = seconds
        self.model = model
