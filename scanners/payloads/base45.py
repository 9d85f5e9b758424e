"""Base45 (RFC 9285): lives in :mod:`fieldkit.shared.base45` with the signed pass that uses it;
this module keeps the name the payload parsers use."""

from fieldkit.shared.base45 import ALPHABET, Base45Error, b45decode, b45encode

__all__ = ["ALPHABET", "Base45Error", "b45decode", "b45encode"]
