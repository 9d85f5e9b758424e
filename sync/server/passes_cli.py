"""``fieldkit-server pass issue|revoke``: signed passes (出入证/通行证) and their revocation.

Passes are made by :func:`fieldkit.shared.passes.issue_pass` with the town's Ed25519 key, so
every gate can verify them offline with the key it pinned at enrollment; revocations reach the
gates with the next sync.

Both are written to the town's audit chain (the console's 审计记录) under ``cli:<user>``: an
issue with the pass numbers it signed, a revocation with the numbers and the reason. The
issued numbers in that chain are the town's register of passes: ``pass revoke`` refuses, by
name, a number it never issued (a typo would otherwise leave the real pass valid), unless
``--force`` says it is a pass issued before the register.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fieldkit.i18n import t

CJK_FONTS = (  # the first one present draws the Chinese of the labels (see SheetFont)
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def _audited(repo: Any, action: str, detail: dict[str, Any], reason: str = "") -> None:
    """One entry of the town's audit chain, as ``device wipe`` writes it."""
    from .console.auth import Audit
    from .console.db import ConsoleDB

    repo.create_schema()
    db = ConsoleDB(repo)
    try:
        db.create_schema()
        who = "cli:" + (os.environ.get("USER") or os.environ.get("USERNAME") or "?")
        Audit(db).append(who, action, detail, reason)
    finally:
        db.close()


def issued_pass_ids(repo: Any) -> set[str]:
    """Every pass number the audit chain says this town issued."""
    from .console.db import ConsoleDB

    repo.create_schema()
    db = ConsoleDB(repo)
    try:
        db.create_schema()
        rows = db.q("SELECT detail FROM console_audit WHERE action = ?", ("pass_issue",))
    finally:
        db.close()
    out: set[str] = set()
    for (detail,) in rows:
        try:
            out.update(str(x) for x in json.loads(detail).get("pass_ids", []))
        except (ValueError, AttributeError, TypeError):
            continue
    return out


def cmd_pass_revoke(args: argparse.Namespace) -> int:
    from .cli_base import CliError
    from .cli_base import open_town as _open

    ids = list(dict.fromkeys(pid.strip() for pid in args.pass_id if pid.strip()))
    _, _, _, repo = _open(args)
    try:
        unknown = [] if args.force else [pid for pid in ids if pid not in issued_pass_ids(repo)]
        if unknown or not ids:
            raise CliError(t("fixscope.pass.unknown", ids=", ".join(unknown or args.pass_id)))
        repo.add_changes(
            "revocation",
            [{"pass_id": pid, "reason": args.reason or ""} for pid in ids],
            time.time(),
        )
        _audited(
            repo, "pass_revoke", {"pass_ids": ids, "forced": bool(args.force)}, args.reason or ""
        )
    finally:
        repo.close()
    print(t("server.pass.revoked", n=len(ids)))
    return 0


LATIN_FONTS = (  # digits and Latin letters: DroidSansFallback, the one CJK font on some
    # machines, has none (a pass number printed as boxes: trial of stop 21)
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
)


def _first_font(paths: tuple[str, ...], size: int) -> Any:
    from PIL import ImageFont

    for path in paths:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return None


class SheetFont:
    """The CJK font for Chinese, a Latin font for ASCII (digits, pass numbers, dates): text is
    drawn in runs, each with the font that has its glyphs. Without a CJK font, non-ASCII text
    is drawn as ``?``; without a Latin font, Pillow's built-in one draws ASCII."""

    def __init__(self, size: int) -> None:
        from PIL import ImageFont

        self.cjk = _first_font(CJK_FONTS, size)
        self.latin = _first_font(LATIN_FONTS, size) or ImageFont.load_default(size=size)

    def draw(self, draw: Any, xy: tuple[int, int], text: str) -> None:
        x, y = xy
        for run in _runs(text):
            font = self.latin if run.isascii() or self.cjk is None else self.cjk
            if font is self.latin and not run.isascii():
                run = run.encode("ascii", "replace").decode()
            draw.text((x, y), run, fill="black", font=font)
            x += int(draw.textlength(run, font=font))


def _runs(text: str) -> list[str]:
    """``text`` cut where it changes between ASCII and not."""
    runs: list[str] = []
    for ch in text:
        if runs and runs[-1][-1].isascii() == ch.isascii():
            runs[-1] += ch
        else:
            runs.append(ch)
    return runs


def _date(text: str, end: bool = False) -> datetime:
    from .cli_base import CliError

    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(t("server.pass.err_date", value=text)) from None
    if end and len(text) <= 10:
        dt = dt.replace(hour=23, minute=59, second=59)
    return dt.astimezone() if dt.tzinfo is None else dt


def _subjects(args: argparse.Namespace) -> list[dict[str, str]]:
    """(subject, holder, pass_id) from --subject or a CSV with subject,holder[,pass_id]."""
    from .cli_base import CliError

    if args.subject:
        return [{"subject": s, "holder": args.holder or "", "pass_id": ""} for s in args.subject]
    try:
        text = Path(args.csv).read_text(encoding="utf-8-sig")
    except OSError as err:
        raise CliError(t("server.pass.err_read", path=args.csv, why=err.strerror)) from None
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        subject = (row.get("subject") or row.get("户号") or row.get("车牌") or "").strip()
        if subject:
            rows.append(
                {
                    "subject": subject,
                    "holder": (row.get("holder") or row.get("姓名") or "").strip(),
                    "pass_id": (row.get("pass_id") or "").strip(),
                }
            )
    if not rows:
        raise CliError(t("server.pass.err_no_subject", path=args.csv))
    return rows


def render_sheet(passes: list[dict[str, Any]], title: str) -> Any:
    """A4 at 150 dpi, 3×4 passes per page (a list of PIL images, one per page)."""
    import segno
    from PIL import Image, ImageDraw

    width, height, cols, rows = 1240, 1754, 3, 4
    font, small = SheetFont(22), SheetFont(18)
    cell_w, cell_h = width // cols, (height - 80) // rows
    pages = []
    for start in range(0, len(passes), cols * rows):
        page = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(page)
        font.draw(draw, (40, 25), title)
        for n, item in enumerate(passes[start : start + cols * rows]):
            x, y = (n % cols) * cell_w, 80 + (n // cols) * cell_h
            buf = io.BytesIO()
            segno.make(item["text"], error="m").save(buf, kind="png", scale=5, border=2)
            qr = Image.open(buf).convert("RGB")
            qr.thumbnail((cell_w - 40, cell_h - 120))
            page.paste(qr, (x + (cell_w - qr.width) // 2, y + 10))
            label = [
                item["pass_id"],
                f"{item['subject']}  {item['holder']}",
                f"{item['valid_from'][:10]} - {item['valid_to'][:10]}",
            ]
            for i, line in enumerate(label):
                small.draw(draw, (x + 20, y + qr.height + 20 + i * 26), line)
            draw.rectangle((x + 5, y + 2, x + cell_w - 5, y + cell_h - 5), outline="#999999")
        pages.append(page)
    return pages


def cmd_pass_issue(args: argparse.Namespace) -> int:
    from fieldkit.shared.identity import mask_name
    from fieldkit.shared.passes import issue_pass

    from .cli_base import CliError
    from .cli_base import open_town as _open

    start, end = _date(args.valid_from), _date(args.valid_to, end=True)
    if end <= start:
        raise CliError(t("server.pass.err_order"))
    directions = [d.strip() for d in args.directions.split(",") if d.strip()]
    _, _, keys, repo = _open(args)
    try:
        rows = _subjects(args)
    except CliError:
        repo.close()
        raise
    issued = []
    for row in rows:
        pass_id = row["pass_id"] or f"{args.prefix}{secrets.token_hex(4).upper()}"
        try:
            text = issue_pass(
                keys.ed25519,
                pass_id=pass_id,
                subject=row["subject"],
                valid_from=start,
                valid_to=end,
                holder_name=row["holder"],
                subject_kind=args.kind,
                directions=directions,
            )
        except ValueError as err:
            repo.close()
            raise CliError(t("server.pass.err_issue", subject=row["subject"], why=err)) from None
        issued.append(
            {
                "pass_id": pass_id,
                "subject": row["subject"],
                "holder": mask_name(row["holder"]) if row["holder"] else "",
                "valid_from": start.isoformat(timespec="minutes"),
                "valid_to": end.isoformat(timespec="minutes"),
                "text": text,
            }
        )
    try:
        _audited(
            repo,
            "pass_issue",
            {
                "pass_ids": [item["pass_id"] for item in issued],
                "valid_from": issued[0]["valid_from"],
                "valid_to": issued[0]["valid_to"],
            },
        )
    finally:
        repo.close()
    out = Path(args.out)
    pages = render_sheet(issued, args.title)
    if out.suffix.lower() == ".pdf":
        pages[0].save(out, save_all=True, append_images=pages[1:])
    else:
        _save_pngs(pages, out)
    listing = out.with_suffix(".csv")
    with listing.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(
            f, fieldnames=["pass_id", "subject", "holder", "valid_from", "valid_to", "text"]
        )
        w.writeheader()
        w.writerows(issued)
    more = t("server.pass.more_pages", n=len(pages) - 1) if len(pages) > 1 else ""
    print(
        t(
            "server.pass.issued",
            n=len(issued),
            fingerprint=keys.fingerprint,
            sheet=str(out),
            more=more,
            listing=str(listing),
        )
    )
    print(t("server.pass.how_revoke"))
    return 0


def _save_pngs(pages: list[Any], out: Path) -> None:
    pages[0].save(out)
    for n, page in enumerate(pages[1:], start=2):
        page.save(out.with_name(f"{out.stem}-{n}{out.suffix}"))


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    passes = sub.add_parser("pass", help="signed passes").add_subparsers(
        dest="pass_command", required=True
    )
    p = passes.add_parser(
        "issue", parents=[common], help="sign passes and print them as a QR sheet (PNG)"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--subject",
        action="append",
        help="household id, plate or person reference (repeat for several)",
    )
    who.add_argument("--csv", help="CSV with columns subject,holder[,pass_id]")
    p.add_argument("--holder", help="holder's name (masked on the pass, e.g. 张*)")
    p.add_argument("--kind", default="household", choices=("household", "vehicle", "person"))
    p.add_argument("--valid-from", required=True, help="YYYY-MM-DD")
    p.add_argument("--valid-to", required=True, help="YYYY-MM-DD (through the end of that day)")
    p.add_argument("--directions", default="in,out", help="in,out | in | out")
    p.add_argument("--prefix", default="P-", help="pass id prefix")
    p.add_argument("--title", default="出入证 FieldKit", help="heading printed on the sheet")
    p.add_argument("--out", default="passes.png", help="sheet file (.png, or .pdf)")
    p.set_defaults(func=cmd_pass_issue)
    p = passes.add_parser("revoke", parents=[common], help="revoke passes by id")
    p.add_argument("pass_id", nargs="+")
    p.add_argument("--reason")
    p.add_argument(
        "--force",
        action="store_true",
        help="revoke numbers the town's register does not list (passes issued before it)",
    )
    p.set_defaults(func=cmd_pass_revoke)
