"""TPM 2.0 sealing of a device secret that is mixed into every PIN key.

Where the machine has a TPM 2.0 and ``tpm2-pytss`` is importable, ``fieldkit init`` makes a
random 32-byte device secret and seals it to the TPM: a sealed data object (keyed-hash, no
sign/decrypt, ``fixedTPM|fixedParent``) under a primary storage key of the owner hierarchy. The
primary key is made again from the same template each time (the TPM derives it from its owner
seed), so nothing is persisted in the TPM; the sealed object's public and private parts (the
private part encrypted by the TPM to that primary key) are kept in the store (``fieldkit_meta``,
see :mod:`.keyring`). Every PIN key is then HKDF(KDF(PIN) ‖ device secret).

A copy of the store opened on another machine, or after the TPM was cleared (new owner seed),
cannot load the sealed object: the TPM refuses it (integrity check) and no PIN opens the copy.
The printed recovery key is the way to move a store to a new machine (it seals a new secret to
that machine's TPM, if it has one; the other operators' PINs are then reset).

Which TPM: ``FIELDKIT_TPM_TCTI`` (a tpm2-tools style TCTI string, e.g.
``swtpm:host=127.0.0.1,port=2321`` for the software TPM the tests start), else
``TPM2TOOLS_TCTI``, else ``device:/dev/tpmrm0`` when that device exists. ``FIELDKIT_TPM=off``
stops new stores from being sealed (a store already sealed still needs its TPM).

Every TPM failure is one clear line (:class:`~fieldkit.errors.AuthError`), never a traceback,
and never counted as a wrong PIN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import AuthError

DEVICE = Path("/dev/tpmrm0")
# The primary storage key: made again on every use from this template and the owner seed.
PRIMARY_TEMPLATE = "ecc256:aes128cfb"
_MAGIC = b"FKT1"  # blob = magic ‖ TPM2B_PUBLIC ‖ TPM2B_PRIVATE (TPM wire format)


def tcti() -> str | None:
    """The TCTI string of this machine's TPM, or None when there is none."""
    for var in ("FIELDKIT_TPM_TCTI", "TPM2TOOLS_TCTI"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return f"device:{DEVICE}" if DEVICE.exists() else None


def machine_state() -> str:
    """Whether a new store would be sealed here: ``present``, ``none`` (no TPM), ``off``
    (FIELDKIT_TPM=off) or ``unavailable: reason`` (a TPM but no tpm2-pytss)."""
    if os.environ.get("FIELDKIT_TPM", "").lower() == "off":
        return "off"
    if tcti() is None:
        return "none"
    reason = _library_missing()
    return f"unavailable: {reason}" if reason else "present"


def _library_missing() -> str | None:
    # The TSS C libraries log to stderr; a user meets our one-line messages instead.
    os.environ.setdefault("TSS2_LOG", "all+NONE")
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError:
        return "tpm2-pytss is not installed"
    return None


def _esapi() -> Any:
    from tpm2_pytss import ESAPI

    conf = tcti()
    if conf is None or _library_missing():
        raise AuthError("tpm.err.unreachable", why=machine_state())
    try:
        return ESAPI(conf)
    except Exception as exc:  # noqa: BLE001 - no TPM answering at that TCTI
        raise AuthError("tpm.err.unreachable", why=_why(exc)) from None


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _primary(esys: Any) -> Any:
    from tpm2_pytss import ESYS_TR

    handle, *_ = esys.create_primary(None, PRIMARY_TEMPLATE, ESYS_TR.OWNER)
    return handle


def probe() -> str | None:
    """Why this machine's TPM cannot seal (None: it can): it answers and makes the primary."""
    try:
        with _esapi() as esys:
            esys.flush_context(_primary(esys))
    except AuthError as exc:
        return str(exc.params.get("why", exc))
    except Exception as exc:  # noqa: BLE001 - e.g. an owner password set on the TPM
        return _why(exc)
    return None


def seal(secret: bytes) -> bytes:
    """Seal ``secret`` to this machine's TPM; the blob (public ‖ private) goes in the store."""
    from tpm2_pytss import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_SENSITIVE_DATA

    with _esapi() as esys:
        try:
            primary = _primary(esys)
            sensitive = TPM2B_SENSITIVE_CREATE()
            sensitive.sensitive.data = TPM2B_SENSITIVE_DATA(secret)
            template = TPM2B_PUBLIC.parse(
                "keyedhash",
                objectAttributes=TPMA_OBJECT.USERWITHAUTH
                | TPMA_OBJECT.FIXEDTPM
                | TPMA_OBJECT.FIXEDPARENT,
            )
            private, public, *_ = esys.create(primary, sensitive, template)
            esys.flush_context(primary)
        except Exception as exc:  # noqa: BLE001 - e.g. an owner password set on the TPM
            raise AuthError("tpm.err.unreachable", why=_why(exc)) from None
    return _MAGIC + public.marshal() + private.marshal()


def unseal(blob: bytes) -> bytes:
    """The secret sealed in ``blob``. Refuses with ``tpm.err.foreign`` when this TPM cannot
    load it (the store was sealed on another machine, or this TPM was cleared since), and with
    ``tpm.err.unreachable`` when no TPM answers."""
    if tcti() is None or not blob.startswith(_MAGIC):  # this machine has no TPM
        raise AuthError("tpm.err.foreign")
    if reason := _library_missing():
        raise AuthError("tpm.err.unreachable", why=reason)
    from tpm2_pytss import TPM2B_PRIVATE, TPM2B_PUBLIC

    try:
        public, used = TPM2B_PUBLIC.unmarshal(blob[len(_MAGIC) :])
        private, _ = TPM2B_PRIVATE.unmarshal(blob[len(_MAGIC) + used :])
    except Exception:  # noqa: BLE001 - a damaged blob is not ours
        raise AuthError("tpm.err.foreign") from None
    with _esapi() as esys:
        try:
            primary = _primary(esys)
        except Exception as exc:  # noqa: BLE001
            raise AuthError("tpm.err.unreachable", why=_why(exc)) from None
        try:
            obj = esys.load(primary, private, public)
        except Exception:  # noqa: BLE001 - integrity check failed: another TPM's object
            esys.flush_context(primary)
            raise AuthError("tpm.err.foreign") from None
        try:
            return bytes(esys.unseal(obj))
        except Exception as exc:  # noqa: BLE001
            raise AuthError("tpm.err.unreachable", why=_why(exc)) from None
        finally:
            esys.flush_context(obj)
            esys.flush_context(primary)
