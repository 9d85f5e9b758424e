"""Reports as plain text in the UI language: what ``fieldkit report`` prints and what the
supervisor screens show (the daily report text is ready to paste into the town's group chat)."""

from __future__ import annotations

from typing import Any

from ..i18n import t
from .builders import CategoryTotals, DailyReport, GateCounts, ShiftSummary
from .purge import PurgePlan

GATE_LINES = (
    ("entries", "exits", "turned_back", "denied", "referred"),
    ("fever", "not_measured", "positive_tests"),
    ("green", "yellow", "red", "no_code"),
    ("keyperson_hits", "isolation_leaving"),
    ("vehicles", "vehicles_in", "vehicles_out", "vehicles_refused"),
)


def _pairs(lang: str, values: dict[str, Any], keys: tuple[str, ...]) -> str:
    sep = "，" if lang == "zh" else ", "
    return sep.join(f"{t(f'report.field.{k}', lang)} {values[k]}" for k in keys)


def gate_lines(counts: GateCounts, lang: str) -> list[str]:
    values = vars(counts)
    return ["  " + _pairs(lang, values, keys) for keys in GATE_LINES]


def daily_text(r: DailyReport, lang: str) -> str:
    lines = [
        t("report.daily_heading", lang, day=r.day, name=r.checkpoint_name, code=r.checkpoint_code)
    ]
    if r.before_setup:  # no report, not a zero report, for a day before the device existed
        lines.append(t("report.before_setup", lang, day=r.day, set_up=r.set_up_on))
        return "\n".join(lines)
    if r.zero_report:
        lines.append(t("report.zero_line", lang))
    else:
        lines.append(
            t(
                "report.abnormal_line",
                lang,
                items=("，" if lang == "zh" else ", ").join(
                    f"{t(f'report.field.{k}', lang)} {v}" for k, v in r.abnormal.items()
                ),
            )
        )
    lines += gate_lines(r.counts, lang)
    ledger = {
        "households_visited": r.households_visited,
        "readings_missed": r.readings_missed,
        "home_referrals": r.home_referrals,
    }
    lines.append(
        "  "
        + _pairs(lang, ledger, ("households_visited", "readings_missed", "home_referrals"))
        + (
            ""
            if r.ledger_available
            else f"（{t('report.no_ledger', lang)}）"
            if lang == "zh"
            else f" ({t('report.no_ledger', lang)})"
        )
    )
    lines.append(
        "  "
        + _pairs(
            lang,
            {"inside_at_end": r.inside_at_end, **r.unsynced},
            ("inside_at_end", "pending", "quarantined"),
        )
    )
    lines.append(t("report.generated", lang, at=r.generated_at[:16].replace("T", " ")))
    return "\n".join(lines)


def reconciliation_lines(s: ShiftSummary, lang: str) -> list[str]:
    rec = s.reconciliation
    lines = [
        t(
            "report.reconcile_line",
            lang,
            at_open=rec.inside_at_open,
            entries=rec.entries,
            exits=rec.exits,
            expected=rec.expected_inside,
            inside=rec.inside_now,
        )
    ]
    if rec.balanced:
        lines.append(t("report.reconcile_ok", lang))
        if getattr(rec, "double_entries", 0):  # balanced, yet someone is counted twice inside
            lines.append(t("report.reconcile_double", lang, n=rec.double_entries))
    else:
        lines.append(
            t(
                "report.reconcile_causes",
                lang,
                difference=f"{rec.difference:+d}",
                double=getattr(rec, "double_entries", 0),
                unmatched=rec.unmatched_exits,
                purged=getattr(rec, "purged", 0),
            )
        )
    return lines


def alert_lines(s: ShiftSummary, lang: str, limit: int = 20) -> list[str]:
    if not s.open_alerts:
        return [t("report.no_open_alerts", lang)]
    lines = [t("report.open_alerts", lang, n=len(s.open_alerts))]
    for a in s.open_alerts[:limit]:
        codes = ", ".join(t(f"report.alert.{c}", lang) for c in a.codes)
        lines.append(f"  ! {a.ts[11:16]} {a.name_masked or '-'} {a.id_masked or ''} — {codes}")
    if len(s.open_alerts) > limit:
        lines.append(f"  … +{len(s.open_alerts) - limit}")
    return lines


def shift_text(s: ShiftSummary, lang: str) -> str:
    state = (
        t("report.shift_closed", lang, at=s.closed_at[:16].replace("T", " "), by=s.closed_by or "")
        if s.closed_at
        else t("report.shift_open", lang)
    )
    lines = [
        t(
            "report.shift_heading",
            lang,
            id=s.shift_id[:8],
            opened=s.opened_at[:16].replace("T", " "),
            by=s.opened_by,
        )
        + " · "
        + state
    ]
    if s.previous and s.previous.get("handover_note"):
        lines.append(t("report.previous_handover", lang, note=s.previous["handover_note"]))
    lines += gate_lines(s.counts, lang)
    lines += reconciliation_lines(s, lang)
    lines += alert_lines(s, lang)
    lines.append(t("report.unsynced_line", lang, **s.unsynced))
    if s.handover_note:
        lines.append(t("report.handover_note", lang, note=s.handover_note))
    return "\n".join(lines)


def handover_text(handover: dict[str, Any] | None, lang: str) -> str:
    if not handover:
        return t("report.no_handover", lang)
    summary = handover.get("summary") or {}
    lines = [
        t(
            "report.handover_from",
            lang,
            by=handover["closed_by"] or "",
            at=(handover["closed_at"] or "")[:16].replace("T", " "),
        )
    ]
    lines.append(t("report.handover_note", lang, note=handover["note"] or "—"))
    rec = summary.get("reconciliation")
    if rec:
        lines.append(
            t(
                "report.reconcile_line",
                lang,
                at_open=rec["inside_at_open"],
                entries=rec["entries"],
                exits=rec["exits"],
                expected=rec["expected_inside"],
                inside=rec["inside_now"],
            )
        )
    alerts = summary.get("open_alerts") or []
    if alerts:
        lines.append(t("report.open_alerts", lang, n=len(alerts)))
    unsynced = summary.get("unsynced")
    if unsynced:
        lines.append(t("report.unsynced_line", lang, **unsynced))
    return "\n".join(lines)


def _label(prefix: str, code: str, lang: str) -> str:
    """The ledger's word for a code when its catalogue has one, else the code itself."""
    text = t(f"{prefix}.{code}", lang)
    return code if text == f"{prefix}.{code}" else text


def totals_text(c: CategoryTotals, lang: str) -> str:
    lines = [t("report.totals_heading", lang, day=c.as_of)]
    for cat, n in c.persons_by_category.items():
        lines.append(
            "  "
            + t(
                "report.totals_persons",
                lang,
                category=t(f"export.category.{cat}", lang),
                n=n,
                passages=c.passages_by_category.get(cat, 0),
            )
        )
    if not c.persons_by_category:
        lines.append("  " + t("report.totals_none", lang))
    for cat, n in c.keyperson_hits.items():
        lines.append("  " + t("report.totals_hits", lang, category=cat, n=n))
    for status, n in c.under_observation.items():
        lines.append(
            "  "
            + t("report.totals_observing", lang, n=n, status=_label("ledger.status", status, lang))
        )
    for key, n in c.ledger.items():
        kind, _, code = key.partition(".")
        label = _label("ledger.cat" if kind == "category" else "ledger.status", code, lang)
        lines.append("  " + t(f"report.totals_ledger_{kind}", lang, label=label, n=n))
    return "\n".join(lines)


def purge_text(plan: PurgePlan, lang: str) -> str:
    key = "purge.done" if plan.done else "purge.plan"
    lines = [t(key, lang, n=plan.total, cutoff=plan.cutoff, days=plan.retention_days)]
    for table, n in plan.to_delete.items():
        lines.append(f"  {t(f'purge.table.{table}', lang)}: {n}")
    if plan.kept_unsynced:
        lines.append(t("purge.kept", lang, n=plan.total_kept))
        for table, n in plan.kept_unsynced.items():
            lines.append(f"  {t(f'purge.table.{table}', lang)}: {n}")
    return "\n".join(lines)
