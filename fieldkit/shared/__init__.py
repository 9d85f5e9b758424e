"""Pieces the device and the town server both use, so neither imports the other.

Small, pure and without I/O: canonical JSON (:mod:`.canonical`), the address key of a household
(:mod:`.address`), the checks of the town's rule settings (:mod:`.rulecheck`). ``sync.server``
imports only these, the wire format (``sync.protocol``) and ``fieldkit.crypto``; the store
imports them instead of ``sync``. An import-linter contract in pyproject.toml keeps it so.
"""
