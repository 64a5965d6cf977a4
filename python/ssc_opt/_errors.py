"""The exceptions of ssc_opt. The native module raises them by name; each carries the one-line
message the ``ssc-opt`` command prints for the same failure."""


class Error(Exception):
    """Base class of every error ssc_opt raises."""


class BadModelError(Error, ValueError):
    """The model is unreadable, truncated or inconsistent (the message names the file and the
    node, tensor or field)."""


class UnsupportedOpError(Error, NotImplementedError):
    """The model uses an op (or attribute value, or opset) that the chosen engine cannot run."""


class VerificationError(Error):
    """The optimised model's outputs drifted past ``verify_tol`` from the original's; nothing
    was produced."""


class InvalidArgumentError(Error, ValueError):
    """The request does not fit the model: an unknown or missing input, an array of the wrong
    dtype or shape, a bad option value."""


class FileError(Error, OSError):
    """Reading or writing a file failed."""


class InternalError(Error, RuntimeError):
    """A bug in ssc-opt (including a Rust panic, caught at the boundary) or a host limit."""
