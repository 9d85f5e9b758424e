"""QR decoding engines behind one small interface.

Each engine takes a greyscale ``numpy`` image (uint8, 2-D) and returns every code it read as a
:class:`Decoded`. An engine never raises: a library exception (OpenCV raises UnicodeDecodeError on
some payloads, zbar can choke on odd sizes) becomes an empty result and is counted in
``engine.errors``. Each engine says whether it can run here and, if not, why and what to do.

Payload bytes are decoded by :func:`decode_payload_bytes` (UTF-8, GBK, Shift_JIS, ISO-8859-1)
or kept as bytes (``text is None``) when they look binary.

One piece (~440 lines): one small class per engine behind one interface, read side by side.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .coded import Problem

ZBAR_COMMAND = "sudo apt-get install libzbar0"
ZBAR_MISSING = Problem(
    f"unavailable: libzbar0 missing; run: {ZBAR_COMMAND}", "zbar_missing", command=ZBAR_COMMAND
)


@dataclass(frozen=True)
class Decoded:
    """One code read by one engine."""

    text: str | None  # None: binary payload, see ``raw``
    raw: bytes
    engine: str
    encoding: str  # utf-8 | gbk | shift_jis | iso-8859-1 | eci | binary
    corners: tuple[tuple[float, float], ...] = ()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KANA = re.compile(r"[\u3040-\u30ff\uff61-\uff9f]")
_FULL_KANA = re.compile(r"[\u3040-\u30ff]")
_HALF_KANA = re.compile(r"[\uff61-\uff9f]")
_HALF_KANA_MARK = re.compile(r"[\uff66-\uff9d][\uff9e\uff9f]")  # kana + (han)dakuten
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _plausibility(text: str, encoding: str) -> int:
    """How much of the payload reads as real text, in bytes covered (ties go to GBK)."""
    score = 2 * len(_CJK.findall(text))
    if encoding == "shift_jis":
        score += 3 * len(_FULL_KANA.findall(text))  # kana are strong evidence of Japanese
        score += len(_HALF_KANA.findall(text)) + 2 * len(_HALF_KANA_MARK.findall(text))
    return score


def _mostly_control(text: str) -> bool:
    """UTF-8 that is mostly control characters (or has NUL) is binary; GS1 (FNC1 as ``\x1d``)
    and ``\x01…`` structured text with a few separators is text."""
    controls = len(_CONTROL.findall(text))
    return "\x00" in text or controls * 2 > len(text)


def decode_payload_bytes(raw: bytes) -> tuple[str | None, str]:
    """Best reading of a QR byte payload: ``(text or None, encoding)``.

    UTF-8 first (what every modern issuer uses; a few control characters such as GS1's FNC1 stay
    text), then the legacy encodings a Chinese checkpoint meets (GBK, Shift_JIS), then ISO-8859-1
    (the QR default); in those, control characters mean binary.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        return (None, "binary") if _mostly_control(text) else (text, "utf-8")
    candidates: list[tuple[int, str, str]] = []
    for encoding in ("gbk", "shift_jis"):
        try:
            decoded = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _CONTROL.search(decoded):
            continue
        score = _plausibility(decoded, encoding)
        candidates.append((score, encoding, decoded))
    if candidates:
        _, encoding, decoded = max(candidates, key=lambda c: c[0])
        return decoded, encoding
    latin = raw.decode("iso-8859-1")
    if _CONTROL.search(latin) or re.search(r"[\x80-\x9f]", latin):
        return None, "binary"
    return latin, "iso-8859-1"


@dataclass
class Engine:
    """Base class: subclasses set ``name`` and implement ``_decode``."""

    name: str = "engine"
    available: bool = True
    bytes_api: bool = True  # False: the library hands over text only (non-UTF-8 payloads lost)
    why_unavailable: str | None = None
    errors: int = field(default=0, compare=False)
    last_error: str | None = field(default=None, compare=False)

    def decode(self, grey: np.ndarray) -> list[Decoded]:
        if not self.available:
            return []
        try:
            return self._decode(grey)
        except Exception as exc:  # noqa: BLE001 - an engine must never take the scan loop down
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return []

    def _decode(self, grey: np.ndarray) -> list[Decoded]:  # pragma: no cover - abstract
        raise NotImplementedError

    def status(self) -> str:
        return "available" if self.available else (self.why_unavailable or "unavailable")


def _corners_from(points) -> tuple[tuple[float, float], ...]:
    try:
        return tuple((float(x), float(y)) for x, y in np.asarray(points).reshape(-1, 2))
    except Exception:  # noqa: BLE001
        return ()


class ZxingEngine(Engine):
    """zxing-cpp: the fastest and most tolerant; the pipeline's fast path."""

    def __init__(
        self, *, try_invert: bool = True, binarizer: str = "LocalAverage", name: str = "zxing-cpp"
    ) -> None:
        super().__init__(name=name)
        try:
            import zxingcpp
        except Exception as exc:  # noqa: BLE001
            self.available, self.why_unavailable = (
                False,
                Problem(
                    f"unavailable: zxing-cpp not importable ({exc})",
                    "not_importable",
                    module="zxing-cpp",
                ),
            )
            return
        self._zx = zxingcpp
        self._formats = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode)
        self._kwargs = {
            "try_invert": try_invert,
            "binarizer": getattr(zxingcpp.Binarizer, binarizer),
        }

    def read(self, grey: np.ndarray, **overrides) -> list:
        """Raw zxing-cpp call (used by the pipeline for detection hints)."""
        return self._zx.read_barcodes(
            grey, **{"formats": self._formats, **self._kwargs, **overrides}
        )

    def _decode(self, grey: np.ndarray, **overrides) -> list[Decoded]:
        out = []
        for code in self.read(grey, **overrides):
            if not code.valid:
                continue
            raw = bytes(code.bytes)
            if code.symbology_identifier.endswith("2"):  # ]Q2: ECI present, zxing applied it
                text, encoding = code.text, "eci"
            else:
                text, encoding = decode_payload_bytes(raw)
            pos = code.position
            corners = tuple(
                (float(p.x), float(p.y))
                for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
            )
            out.append(Decoded(text, raw, self.name, encoding, corners))
        return out

    def decode_with(self, grey: np.ndarray, **overrides) -> list[Decoded]:
        """Decode with other zxing-cpp options (binarizer, is_pure …); never raises."""
        try:
            return self._decode(grey, **overrides)
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return []


class ZbarEngine(Engine):
    """pyzbar over the zbar shared library (libzbar0).

    zbar converts payloads to UTF-8 by guessing their charset, and guesses GBK wrong; we ask it
    for the raw bytes (``ZBAR_CFG_BINARY``, zbar >= 0.23) and decode them ourselves.
    """

    _CFG_BINARY = 4  # zbar.h: ZBAR_CFG_BINARY (zbar 0.23+)

    def __init__(self) -> None:
        super().__init__(name="pyzbar")
        if ctypes.util.find_library("zbar") is None:
            self.available, self.why_unavailable = False, ZBAR_MISSING
            return
        try:
            from pyzbar import pyzbar
        except ImportError as exc:
            missing = "zbar" in str(exc).lower()
            self.available = False
            self.why_unavailable = (
                ZBAR_MISSING
                if missing
                else Problem(f"unavailable: pyzbar ({exc})", "not_importable", module="pyzbar")
            )
            return
        self._pyzbar = pyzbar
        self._qr = pyzbar.ZBarSymbol.QRCODE

    def _decode(self, grey: np.ndarray) -> list[Decoded]:
        pz = self._pyzbar
        grey = np.ascontiguousarray(grey, dtype=np.uint8)
        height, width = grey.shape[:2]
        pixels = grey.tobytes()
        out = []
        with pz._image_scanner() as scanner:
            pz.zbar_image_scanner_set_config(scanner, 0, pz.ZBarConfig.CFG_ENABLE, 0)
            pz.zbar_image_scanner_set_config(scanner, self._qr, pz.ZBarConfig.CFG_ENABLE, 1)
            pz.zbar_image_scanner_set_config(scanner, self._qr, self._CFG_BINARY, 1)
            with pz._image() as img:
                pz.zbar_image_set_format(img, pz._FOURCC["L800"])
                pz.zbar_image_set_size(img, width, height)
                pz.zbar_image_set_data(
                    img,
                    ctypes.cast(pixels, ctypes.c_void_p),  # type: ignore[arg-type]
                    len(pixels),
                    None,
                )
                if pz.zbar_scan_image(scanner, img) < 0:
                    return []
                for sym in pz._decode_symbols(pz._symbols_for_image(img)):
                    raw = bytes(sym.data)
                    text, encoding = decode_payload_bytes(raw)
                    out.append(Decoded(text, raw, self.name, encoding, _corners_from(sym.polygon)))
        return out


class OpenCVEngine(Engine):
    """OpenCV QRCodeDetector (classic) or QRCodeDetectorAruco; bytes API, so no Unicode errors."""

    def __init__(self, aruco: bool = False) -> None:
        super().__init__(name="opencv-aruco" if aruco else "opencv")
        try:
            import cv2
        except Exception as exc:  # noqa: BLE001
            self.available, self.why_unavailable = (
                False,
                Problem(
                    f"unavailable: opencv not importable ({exc})",
                    "not_importable",
                    module="opencv",
                ),
            )
            return
        cls = getattr(cv2, "QRCodeDetectorAruco" if aruco else "QRCodeDetector", None)
        if cls is None:
            self.available = False
            self.why_unavailable = Problem(
                f"unavailable: this OpenCV ({cv2.__version__}) has no {self.name} detector",
                "no_detector",
                version=cv2.__version__,
                detector=self.name,
            )
            return
        self._detector = cls()
        self._has_bytes = hasattr(self._detector, "detectAndDecodeBytesMulti")

    def _decode(self, grey: np.ndarray) -> list[Decoded]:
        if self._has_bytes:
            ok, payloads, points, _ = self._detector.detectAndDecodeBytesMulti(grey)
        else:  # older OpenCV: str API, may raise UnicodeDecodeError (caught by decode())
            ok, texts, points, _ = self._detector.detectAndDecodeMulti(grey)
            payloads = [t.encode("utf-8") for t in texts] if ok else []
        if not ok:
            return []
        out = []
        for i, payload in enumerate(payloads):
            raw = _undo_latin1_transcode(bytes(payload))
            if not raw:
                continue
            text, encoding = decode_payload_bytes(raw)
            corners = _corners_from(points[i]) if points is not None and i < len(points) else ()
            out.append(Decoded(text, raw, self.name, encoding, corners))
        return out


def _undo_latin1_transcode(raw: bytes) -> bytes:
    """OpenCV turns byte-mode payloads it takes for ISO-8859-1 into UTF-8 (GBK text becomes
    "ÖÐÎÄ"). When the original bytes read as GBK/Shift_JIS text, give those back."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if not any(ord(c) > 0x7F for c in text) or any(ord(c) > 0xFF for c in text):
        return raw
    original = text.encode("iso-8859-1")
    try:
        original.decode("utf-8")
        return raw  # the original was UTF-8 already: OpenCV would not have transcoded it
    except UnicodeDecodeError:
        pass
    decoded, encoding = decode_payload_bytes(original)
    if (
        decoded is not None
        and encoding in ("gbk", "shift_jis")
        and (len(_CJK.findall(decoded)) + len(_KANA.findall(decoded)) >= 2)
    ):
        return original
    return raw


MODEL_DIR = Path(__file__).with_name("models")
# The WeChat CNN models (WeChatCV, Apache-2.0; see models/README.md): name -> sha256.
WECHAT_MODELS = {
    "detect.prototxt": "e8acfc395caf443a47f15686a9b9207b36cb8f7e6ceb8fbaf6466665e68a9466",
    "detect.caffemodel": "cc49b8c9babaf45f3037610fe499df38c8819ebda29e90ca9f2e33270f6ef809",
    "sr.prototxt": "8ae41acba97e8b4a8e741ee350481e49b8e01d787193f470a4c95ee1c02d5b61",
    "sr.caffemodel": "e5d36889d8e6ef2f1c1f515f807cec03979320ac81792cd8fb927c31fd658ae3",
}


def check_wechat_models(folder: Path = MODEL_DIR) -> str | None:
    """None when the four model files are there and unaltered, else why not (one sentence)."""
    for name, digest in WECHAT_MODELS.items():
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError:
            return Problem(
                f"unavailable: model file {path} missing; reinstall fieldkit",
                "model_missing",
                path=str(path),
            )
        if hashlib.sha256(data).hexdigest() != digest:
            return Problem(
                f"unavailable: model file {path} altered (sha256 differs); reinstall fieldkit",
                "model_altered",
                path=str(path),
            )
    return None


class WeChatEngine(Engine):
    """OpenCV's WeChat QR reader: a CNN detector (SSD) and a CNN super-resolution model in front
    of its own ZXing port. Reads glare, damage and tiny modules that the others miss, at several
    times their cost, so the pipeline runs it only on candidate regions.

    Needs opencv-contrib 4.x (OpenCV 5 has no Caffe importer) and the four model files shipped in
    ``scanners/models`` with their sha256 checked at load. Its Python binding returns ``str``:
    a payload that is not UTF-8 raises inside OpenCV (counted in ``errors``) and other engines
    get their turn; its text is re-checked with :func:`decode_payload_bytes`.
    """

    def __init__(self, model_dir: Path = MODEL_DIR) -> None:
        super().__init__(name="wechat", bytes_api=False)
        try:
            import cv2
        except Exception as exc:  # noqa: BLE001
            self.available = False
            self.why_unavailable = Problem(
                f"unavailable: opencv ({exc})", "not_importable", module="opencv"
            )
            return
        cls = getattr(cv2, "wechat_qrcode_WeChatQRCode", None)
        if cls is None:
            self.available = False
            self.why_unavailable = Problem(
                f"unavailable: this OpenCV ({cv2.__version__}) has no wechat_qrcode; "
                "install opencv-contrib-python-headless",
                "no_wechat",
                version=cv2.__version__,
                package="opencv-contrib-python-headless",
            )
            return
        problem = check_wechat_models(model_dir)
        if problem:
            self.available, self.why_unavailable = False, problem
            return
        paths = [str(model_dir / n) for n in WECHAT_MODELS]
        try:
            self._detector = cls(*paths)
        except Exception as exc:  # noqa: BLE001 - e.g. OpenCV 5 (ONNX only) or a broken build
            self.available = False
            self.why_unavailable = Problem(
                f"unavailable: OpenCV {cv2.__version__} cannot load the WeChat models "
                f"({type(exc).__name__}); it needs opencv-contrib-python-headless 4.x",
                "wechat_models",
                version=cv2.__version__,
                package="opencv-contrib-python-headless 4.x",
            )

    def _decode(self, grey: np.ndarray) -> list[Decoded]:
        texts, points = self._detector.detectAndDecode(grey)
        out = []
        for i, text in enumerate(texts):
            if not text:
                continue
            raw = _undo_latin1_transcode(text.encode("utf-8"))
            decoded, encoding = decode_payload_bytes(raw)
            corners = _corners_from(points[i]) if points is not None and i < len(points) else ()
            out.append(Decoded(decoded, raw, self.name, encoding, corners))
        return out


ENGINE_NAMES = ("zxing-cpp", "pyzbar", "opencv", "opencv-aruco", "wechat")


def make_engine(name: str) -> Engine:
    if name == "zxing-cpp":
        return ZxingEngine()
    if name == "pyzbar":
        return ZbarEngine()
    if name == "opencv":
        return OpenCVEngine(aruco=False)
    if name == "opencv-aruco":
        return OpenCVEngine(aruco=True)
    if name == "wechat":
        return WeChatEngine()
    raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")


def all_engines() -> list[Engine]:
    """Every engine, available or not (ask ``.available`` / ``.status()``)."""
    return [make_engine(n) for n in ENGINE_NAMES]
