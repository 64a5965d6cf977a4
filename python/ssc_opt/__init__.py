"""ssc-opt: make CNNs with structured weights run as fast as their structure allows.

* :func:`optimize` rewrites an ONNX model into exactly equivalent, cheaper standard ONNX (the
  ``ssc-opt IN -o OUT`` job) and returns an :class:`Optimized`;
* :class:`InferenceSession` runs a model with ssc-opt's JIT, shaped like
  ``onnxruntime.InferenceSession``;
* :func:`inspect` and :func:`analyze` report a model's layers and their weight structure.

Errors are :class:`Error` subclasses carrying the ``ssc-opt`` command's one-line message.
"""

from ._errors import (
    BadModelError,
    Error,
    FileError,
    InternalError,
    InvalidArgumentError,
    UnsupportedOpError,
    VerificationError,
)
from ._native import (
    InferenceSession,
    NodeArg,
    Optimized,
    __version__,
    analyze,
    inspect,
    optimize,
)

__all__ = [
    "BadModelError",
    "Error",
    "FileError",
    "InferenceSession",
    "InternalError",
    "InvalidArgumentError",
    "NodeArg",
    "Optimized",
    "UnsupportedOpError",
    "VerificationError",
    "__version__",
    "analyze",
    "inspect",
    "optimize",
]
