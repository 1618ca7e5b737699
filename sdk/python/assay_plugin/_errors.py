"""Why a plugin call failed. The exception's class tells the host what to do."""


class PluginError(Exception):
    """Base class of the errors a plugin raises on purpose.

    Any other exception escaping a plugin is reported as ``failed`` with its
    traceback in the call's captured stderr.
    """

    #: The contract's name for this kind of error.
    kind = "failed"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = str(message)


class InvalidInput(PluginError):
    """The item or config cannot be handled; the host never retries."""

    kind = "invalid-input"


class Transient(PluginError):
    """A passing failure (rate limit, upstream down); the host may retry."""

    kind = "transient"


class Failed(PluginError):
    """Any other failure; not retried."""

    kind = "failed"
