"""The town's signed pass: the format lives in :mod:`fieldkit.shared.passes` (the town server
issues, the gate verifies); this module keeps the name the payload parsers use."""

from fieldkit.shared.passes import (
    DIRECTION_BITS,
    MAX_TEXT,
    PREFIX_B45,
    PREFIX_B64,
    PREFIXES,
    SIGNED_CONTEXT,
    SUBJECT_KINDS,
    VERSION,
    PassResult,
    issue_pass,
    verify_pass,
)

__all__ = [
    "DIRECTION_BITS",
    "MAX_TEXT",
    "PREFIX_B45",
    "PREFIX_B64",
    "PREFIXES",
    "SIGNED_CONTEXT",
    "SUBJECT_KINDS",
    "VERSION",
    "PassResult",
    "issue_pass",
    "verify_pass",
]
