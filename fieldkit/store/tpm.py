"""Optional TPM 2.0 sealing of a device secret that is mixed into every PIN key.

Where the machine has a TPM 2.0 (``/dev/tpmrm0``) and ``tpm2-pytss`` is importable, a random
32-byte device secret is created once inside the TPM's storage hierarchy as a sealed data object
(a keyed-hash object with ``sensitive`` data), persisted at ``PERSISTENT_HANDLE``; FieldKit mixes
it into the key derived from each PIN (HKDF over KDF output ‖ secret). A copy of the store file
without that very TPM then opens nothing, whatever the PIN.

Without a TPM (the usual case on a Raspberry Pi, and on the machine this was written on) the
state is ``none`` and PIN keys are derived from the PIN alone; ``fieldkit status`` says which
protection is active. ``FIELDKIT_TPM=off`` turns the TPM path off (e.g. to move a store to
another machine: reset PINs afterwards).

The TPM code path is guarded: any failure of the library or the chip reports
``unavailable: <reason>`` and the store keeps working without it. It could not be exercised on
real hardware here (no TPM on the build machine): it follows the tpm2-pytss ``ESAPI`` API
(``create_primary``, ``create``, ``load``, ``evict_control``, ``unseal``) and is untested there.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PERSISTENT_HANDLE = 0x81010F17  # owner persistent range; "F17" for FieldKit
DEVICE = Path("/dev/tpmrm0")


@cache
def _probe() -> tuple[str, bytes | None]:
    """(state, secret): state is ``active``, ``none`` or ``unavailable: reason``."""
    if os.environ.get("FIELDKIT_TPM", "").lower() == "off":
        return "off", None
    if not DEVICE.exists():
        return "none", None
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError:
        return "unavailable: tpm2-pytss is not installed", None
    try:
        return "active", _unseal_or_create()
    except Exception as exc:  # noqa: BLE001 - any TPM failure leaves the store usable without it
        return f"unavailable: {type(exc).__name__}: {exc}", None


def _unseal_or_create() -> bytes:  # pragma: no cover - needs a TPM 2.0
    from tpm2_pytss import ESAPI, ESYS_TR, TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE
    from tpm2_pytss.types import TPM2B_SENSITIVE_DATA

    with ESAPI(f"device:{DEVICE}") as esys:
        try:
            handle = esys.tr_from_tpmpublic(PERSISTENT_HANDLE)
            return bytes(esys.unseal(handle))
        except Exception:  # noqa: BLE001 - not created yet
            pass
        primary, *_ = esys.create_primary(
            TPM2B_SENSITIVE_CREATE(), "ecc256:aes128cfb", ESYS_TR.OWNER
        )
        secret = os.urandom(32)
        sensitive = TPM2B_SENSITIVE_CREATE()
        sensitive.sensitive.data = TPM2B_SENSITIVE_DATA(secret)
        template = TPM2B_PUBLIC.parse(
            "keyedhash", objectAttributes="userwithauth|fixedtpm|fixedparent"
        )
        priv, pub, *_ = esys.create(primary, sensitive, template)
        obj = esys.load(primary, priv, pub)
        esys.evict_control(ESYS_TR.OWNER, obj, PERSISTENT_HANDLE)
        esys.flush_context(primary)
        return secret


def status() -> str:
    """``active`` (a TPM-sealed secret is mixed into PIN keys), ``none`` (no TPM on this
    machine), ``off`` (turned off by FIELDKIT_TPM=off) or ``unavailable: reason``."""
    return _probe()[0]


def device_secret() -> bytes | None:
    return _probe()[1]
