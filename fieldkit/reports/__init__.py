"""Supervisor reports and exports: shift summary and handover, daily (and zero) report,
category totals as of a date, XLSX/CSV exports, retention purge. No terminal code here."""

from __future__ import annotations

from .atomic import ExportError, write_atomic
from .builders import (
    CategoryTotals,
    DailyReport,
    GateCounts,
    ShiftSummary,
    category_totals,
    daily_report,
    hourly,
    shift_summary,
    temperature_histogram,
)
from .document import FORMATS, KINDS, build_document
from .export import ExportResult, export
from .ledger_data import coverage_per_building
from .purge import PurgePlan, plan_purge, purge
from .shiftwork import OpenedShift, close_shift, open_shift

__all__ = [
    "FORMATS",
    "KINDS",
    "CategoryTotals",
    "DailyReport",
    "ExportError",
    "ExportResult",
    "GateCounts",
    "OpenedShift",
    "PurgePlan",
    "ShiftSummary",
    "build_document",
    "category_totals",
    "close_shift",
    "coverage_per_building",
    "daily_report",
    "export",
    "hourly",
    "open_shift",
    "plan_purge",
    "purge",
    "shift_summary",
    "temperature_histogram",
    "write_atomic",
]
