"""``fieldkit decode`` and ``fieldkit scan``.

``register(subparsers)`` adds both subcommands to the app's argparse CLI; ``python -m
scanners.cli`` runs them on their own.

decode exit codes: 0 every image had a code; 1 some image had none; 2 some file could not be read.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldkit.i18n import t

from .engines import ENGINE_NAMES, all_engines, make_engine
from .masking import mask_personal, result_secrets
from .payloads import PayloadConfig
from .payloads.dcc import TrustList
from .payloads.healthcode import DEFAULT_PATTERNS, HealthCodePattern
from .pipeline import DEFAULT_BUDGET_MS, DEFAULT_DEDUPE_SECONDS, LatestFrameScanner, Pipeline, Read
from .sources import ENDED, IMAGE_SUFFIXES, SourceSpec, load_image, open_source
from .words import engine_why, health_pattern_error, result_problem, state_text, status_text


def _payload_config(args: argparse.Namespace) -> PayloadConfig:
    keys: list[Any] = []
    for path in args.pass_key or []:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        keys.append(load_pem_public_key(Path(path).read_bytes()))
    patterns = list(DEFAULT_PATTERNS)
    for item in args.health_pattern or []:
        system, sep, regex = item.partition("=")
        if not sep:
            raise SystemExit(health_pattern_error(repr(item)))
        patterns.insert(0, HealthCodePattern(system, regex))
    trust = TrustList.load(args.trust) if args.trust else None
    now = datetime.fromisoformat(args.now) if args.now else None
    clock = (lambda: now) if now else (lambda: datetime.now(UTC))
    # ``fieldkit decode``/``scan`` on a set-up device add the town's keys and revocations it
    # holds (fieldkit.cli): a revoked pass was said to be unsigned and not revoked.
    keys += list(getattr(args, "device_pass_keys", ()))
    revoked = frozenset(getattr(args, "device_revoked", ()))
    return PayloadConfig(tuple(patterns), tuple(keys), revoked, trust, None, clock)


def _pipeline(args: argparse.Namespace, dedupe_seconds: float) -> Pipeline:
    engines = [make_engine(n) for n in args.engine] if args.engine else all_engines()
    for e in engines:
        if not e.available:
            print(
                t("scanout.note", engine=e.name, why=engine_why(e.why_unavailable)), file=sys.stderr
            )
    return Pipeline(engines, args.budget_ms, dedupe_seconds, _payload_config(args))


NO_CODE = "no_code"  # decode's error_code when an image was read but held no code


def _verdict(result: Any) -> str:
    """ "ok" or "INVALID: why" in the reader's language (the problem by its code if it has one)."""
    if result.ok:
        return t("scanout.ok")
    return t("scanout.invalid", problem=result_problem(result))


def _code_dict(read: Read) -> dict:
    """One code for output, personal data masked; undecodable bytes also in base64."""
    secrets = result_secrets(read.result)
    out = {
        "text": mask_personal(read.text, secrets),
        "engine": read.engine,
        "step": read.step,
        **mask_personal(read.result.to_dict(), secrets),
    }
    out["message"] = mask_personal(_verdict(read.result), secrets)
    if read.text is None or out["text"] == read.text:  # never anything masked, not even in base64
        out["bytes_base64"] = base64.b64encode(read.raw).decode()
    return out


def _expand(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


def decode_file(pipeline: Pipeline, path: Path) -> dict:
    """One result object for one image file (never raises)."""
    image, problem = load_image(path)
    if image is None:
        code = getattr(problem, "code", "unreadable")
        return {
            "path": str(path),
            "ok": False,
            "error": problem,
            "error_code": code,
            "message": t("scanout.problem." + code, **getattr(problem, "params", {})),
            "texts": [],
            "engine": None,
            "ms": 0.0,
            "kind": None,
            "parsed": None,
        }
    frame = pipeline.decode(image)
    reads = [pipeline.make_read(code, step, frame.ms) for code, step in frame.codes]
    first = reads[0] if reads else None
    return {
        "path": str(path),
        "ok": bool(reads),
        "texts": [mask_personal(r.text, result_secrets(r.result)) for r in reads],
        "engine": first.engine if first else None,
        "ms": round(frame.ms, 2),
        "kind": first.kind if first else None,
        "parsed": mask_personal(first.result.parsed, result_secrets(first.result))
        if first
        else None,
        "codes": [_code_dict(r) for r in reads],
        **({} if reads else {"error": "no code found", "error_code": NO_CODE}),
        **({} if reads else {"message": t("scanout.no_code")}),
    }


def cmd_decode(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args, dedupe_seconds=0)
    worst = 0
    for path in _expand(args.paths):
        result = decode_file(pipeline, path)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        elif result["ok"]:
            for code in result["codes"]:
                text = code["text"]
                print(
                    f"{path}: [{t('scan.kind.' + code['kind'])}] {code['message']} "
                    f"({code['engine']}, {result['ms']:.1f} ms)"
                    f"\n    {_printable(text) if text is not None else t('scanout.binary')}"
                )
        else:
            print(f"{path}: {result['message']}")
        if "error_code" in result and result["error_code"] != NO_CODE:
            worst = 2
        elif not result["ok"]:
            worst = max(worst, 1)
    return worst


def cmd_scan(args: argparse.Namespace) -> int:
    if args.video:
        spec = SourceSpec("video", args.video)
    elif args.images:
        spec = SourceSpec("images", args.images)
    else:
        spec = SourceSpec("camera", str(args.camera), args.width, args.height, args.fps)
    pipeline = _pipeline(args, dedupe_seconds=args.dedupe_seconds)
    source = open_source(spec)

    def show(reads: list[Read]) -> None:
        for read in reads:
            if args.json:
                print(
                    json.dumps(
                        {
                            "time": datetime.now(UTC).isoformat(),
                            "ms": round(read.ms, 1),
                            **_code_dict(read),
                        },
                        ensure_ascii=False,
                    ),
                    flush=True,
                )
            else:
                secrets = result_secrets(read.result)
                shown = t("scanout.binary")
                if read.text is not None:
                    shown = _printable(mask_personal(read.text, secrets))
                print(
                    f"{time.strftime('%H:%M:%S')} [{t('scan.kind.' + read.kind)}] "
                    f"{mask_personal(_verdict(read.result), secrets)} "
                    f"({read.engine}/{read.step}, {read.ms:.0f} ms): {shown}",
                    flush=True,
                )

    last_status = None
    live = spec.kind == "camera"
    scanner = LatestFrameScanner(pipeline, show) if live else None
    try:
        while True:
            frame = source.read()
            if source.status != last_status:
                last_status = source.status
                print(
                    f"[{state_text(source.status.state)}] {status_text(source.status)}",
                    file=sys.stderr,
                    flush=True,
                )
            if frame is None:
                if source.status.state == ENDED:
                    break
                time.sleep(0.1)
                continue
            if scanner is not None:
                scanner.submit(frame)
            else:
                show(pipeline.process(frame))
    except KeyboardInterrupt:
        pass
    finally:
        if scanner is not None:
            scanner.close()
            print(
                t("scanout.frames", decoded=scanner.decoded, skipped=scanner.skipped),
                file=sys.stderr,
            )
        source.close()
    return 0


def _printable(text: str) -> str:
    """Control characters (GS1's FNC1 …) shown escaped on a terminal line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _common(parser: argparse.ArgumentParser, budget_ms: float | None) -> None:
    parser.add_argument(
        "--engine",
        action="append",
        choices=ENGINE_NAMES,
        help="use only these engines (repeatable; default: all available)",
    )
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=budget_ms,
        help="time budget per frame for escalation (default: %(default)s)",
    )
    parser.add_argument("--trust", metavar="FILE", help="DCC signer certificates (PEM or JSON)")
    parser.add_argument(
        "--pass-key",
        action="append",
        metavar="PEM",
        help="town Ed25519 public key for passes (repeatable)",
    )
    parser.add_argument(
        "--health-pattern",
        action="append",
        metavar="SYSTEM=REGEX",
        help="health-code link pattern with a (?P<token>...) group (repeatable)",
    )
    parser.add_argument("--now", metavar="ISO", help="check validity at this time (tests, replays)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def register(subparsers) -> None:
    """Add ``decode`` and ``scan`` to an argparse subparsers object."""
    decode = subparsers.add_parser(
        "decode",
        help="read QR codes in image files",
        description="Read every QR code in each image and parse it.",
    )
    decode.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    _common(decode, None)  # files: read all the pipeline can, whatever the machine's load
    decode.set_defaults(func=cmd_decode)

    scan = subparsers.add_parser("scan", help="read QR codes live from a camera, video or folder")
    source = scan.add_mutually_exclusive_group()
    source.add_argument("--camera", default="0", metavar="N|PATH", help="camera index or device")
    source.add_argument("--video", metavar="FILE")
    source.add_argument("--images", metavar="DIR")
    scan.add_argument("--width", type=int)
    scan.add_argument("--height", type=int)
    scan.add_argument("--fps", type=float)
    scan.add_argument("--dedupe-seconds", type=float, default=DEFAULT_DEDUPE_SECONDS)
    _common(scan, DEFAULT_BUDGET_MS)  # live: the next frame is coming
    scan.set_defaults(func=cmd_scan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanners.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
