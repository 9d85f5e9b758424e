"""A software TPM 2.0 (swtpm, the libtpms reference implementation) for the TPM tests and
``bench/tpm_unlock.py``: one process per TPM, spoken to through the swtpm TCTI exactly as a
laptop's ``/dev/tpmrm0`` is through the device TCTI (same TSS stack, same commands)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def why_no_tpm() -> str | None:
    if shutil.which("swtpm") is None:
        return "swtpm is not installed (Debian: apt-get install swtpm)"
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError as exc:
        return f"tpm2-pytss is not importable ({exc}; needs libtss2-dev to build)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SoftTpm:
    """One swtpm process: a TPM 2.0 with its own seeds, state in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> SoftTpm:
        for _ in range(5):  # a port picked free may be taken before swtpm binds it
            self.port = _free_port()  # the swtpm TCTI talks to port + 1 for control
            ctrl = self.port + 1
            self.proc = subprocess.Popen(
                [
                    "swtpm",
                    "socket",
                    "--tpm2",
                    "--tpmstate",
                    f"dir={self.state_dir}",
                    "--server",
                    f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                    "--ctrl",
                    f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
                    "--flags",
                    "not-need-init,startup-clear",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 20
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("swtpm did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None

    def clear(self) -> None:
        """TPM2_Clear with the (empty) lockout authorisation: a new owner seed, as after a
        'clear TPM' in the firmware set-up."""
        from tpm2_pytss import ESAPI, ESYS_TR

        with ESAPI(self.tcti) as esys:
            esys.clear(ESYS_TR.LOCKOUT)
