"""Wording and layout defects found by the new-user trial (report-trial items 17, 26, 16, 22, 27).

Each test drives the real thing (catalogues, the CLI on a real store, the TUI under Pilot at
80×24) and failed before its fix.
"""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input, Label

from fieldkit.i18n import LANGUAGES, catalogue, t
from fieldkit.store import open_store
from fieldkit.ui.app import make_app
from fieldkit.ui.login import SetupScreen
from fieldkit.ui.registry import screen_entries
from tests.conftest import SUPERVISOR_PIN
from tests.test_ui_app import settle as _settle_workers

SIZE = (80, 24)

# -- 17: the PIN length comes from security.min_pin_length, never from a catalogue ----------

# A length stated with a number: "至少 4 位", "4 位 PIN", "at least 4 characters", "(at least 4)".
_LENGTH = re.compile(
    r"\d+\s*(位|个字符|digits?|characters?|chars?)|(至少|最少|最多|at least|at most)\s*\d",
    re.IGNORECASE,
)
_PIN = re.compile(r"PIN|口令|密码", re.IGNORECASE)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_catalogue_text_states_a_pin_length_except_through_a_parameter(lang):
    stated = {
        key: text
        for key, text in catalogue(lang).items()
        if _PIN.search(text) and _LENGTH.search(text)
    }
    assert stated == {}


@pytest.mark.parametrize("n", [6, 8])
async def test_setup_form_label_states_the_configured_pin_length(settings, n):
    settings.security.min_pin_length = n
    store = open_store(settings, create=True)
    app = make_app(settings, store, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        labels = [str(label.render()) for label in app.screen.query(Label)]
        pin_label = next(text for text in labels if "PIN" in text)
        assert f"{n}" in pin_label and "4" not in pin_label, pin_label
    store.close()


def test_pin_length_messages_take_their_number():
    assert "8" in t("setup.pin", "zh", n=8) and "8" in t("setup.pin", "en", n=8)
    assert "64" in t("err.pin_long", "zh", max=64)


# -- 26: no English words in Chinese command-line output ------------------------------------

ZH = {"FIELDKIT_LANG": "zh"}
# An English word a reader of Chinese would meet: codes like login_failed, JSON braces.
_CODE_WORD = re.compile(r"[a-z]+_[a-z_]+|\{\"|\b(login|lock|setup|export|sync)\b")


def test_audit_list_shows_actions_and_details_in_words_and_masks_ids(cli, settings):
    cli.init()
    cli.run("audit", "verify", pin="0000", env=ZH, check=False)  # a wrong PIN: login_failed
    out = cli.run("audit", "list", env=ZH).stdout
    assert "首次设置" in out and "登录失败" in out, out
    assert not _CODE_WORD.search(out), out


def test_audit_details_are_words_and_id_numbers_are_masked():
    from fieldkit.cliwords import audit_lines

    rows = [
        {
            "seq": 7,
            "ts": "2026-12-02T11:20:57+00:00",
            "operator": "王芳",
            "action": "export_full",
            "detail": {"kind": "shift-log", "full": True, "reason": "流调 11010519491231002X"},
        }
    ]
    text = audit_lines(rows, "zh")
    assert "导出完整个人信息" in text and "完整信息 是" in text and "班次登记" in text
    assert "11010519491231002X" not in text and "110105********002X" in text
    assert "T11:20" not in text and "{" not in text


def _audit_actions_in_code() -> set[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found: set[str] = set()
    for path in [*root.joinpath("fieldkit").rglob("*.py"), *root.joinpath("sync").glob("*.py")]:
        text = path.read_text("utf-8")
        found |= set(re.findall(r'audit\.append\(\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'audit\.append\(\s*"([a-z_]+)" if', text))
        found |= set(re.findall(r'audit\.append\(\s*"[a-z_]+" if \w+ else "([a-z_]+)"', text))
    return found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_audit_action_the_device_writes_has_a_word(lang):
    actions = _audit_actions_in_code()
    assert {"login", "export", "export_full", "ledger_import"} <= actions
    missing = sorted(a for a in actions if f"audit.action.{a}" not in catalogue(lang))
    assert missing == []


def test_record_help_names_every_value_in_chinese_and_takes_the_chinese_word(cli):
    out = cli.run("record", "--help", env=ZH).stdout
    for pair in ("in 进", "out 出", "green 绿码", "yellow 黄码", "red 红码", "resident 居民"):
        assert pair in out, (pair, out)
    cli.init()
    r = cli.json(
        "record",
        "--direction",
        "进",
        "--id-number",
        "11010519491231002X",
        "--temperature",
        "36.5",
        "--code-colour",
        "绿码",
        pin=SUPERVISOR_PIN,
        env=ZH,
    )
    assert r["decision"] == "admit"


def test_every_option_with_fixed_values_names_them_in_chinese():
    import argparse

    from fieldkit.cli import build_parser
    from fieldkit.cliwords import NAMES_ONLY, choice_key
    from fieldkit.i18n import set_language

    set_language("zh")
    unnamed = []

    def walk(parser: argparse.ArgumentParser, where: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{where} {name}")
            elif action.choices and action.dest not in NAMES_ONLY:
                for value in action.choices:
                    key = choice_key(action.dest, str(value))
                    if key is None or t(key, "zh") not in (action.help or ""):
                        unnamed.append(f"{where} --{action.dest} {value}")

    walk(build_parser(None), "fieldkit")
    assert unnamed == []


def test_a_file_that_is_not_a_spreadsheet_is_said_without_a_class_name(cli, tmp_path):
    cli.init()
    bad = tmp_path / "台账.xlsx"
    bad.write_text("这不是表格\n", encoding="utf-8")
    r = cli.run("ledger", "import", str(bad), pin=SUPERVISOR_PIN, env=ZH, check=False)
    assert r.returncode != 0 and "电子表格" in r.stderr, r.stderr
    assert not re.search(r"[A-Z][a-z]+[A-Z]\w*|Error|\(", r.stderr), r.stderr


def test_a_store_from_a_newer_version_is_said_without_migration_names(cli):
    import sqlite3

    from fieldkit.store.schema import all_migration_sets

    cli.init()
    db = next(p for p in cli.home.rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3"))
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO _sqlite_migrations(migration_set, name, applied_at) VALUES (?, ?, ?)",
        [all_migration_sets()[0].name, "m999_future_thing", "2027-01-01"],
    )
    conn.commit()
    conn.close()
    r = cli.run("status", env=ZH, check=False)
    assert r.returncode != 0 and "更新版本" in r.stderr, r.stderr
    assert "m999" not in r.stderr and "future" not in r.stderr


def test_cli_check_digit_error_names_the_option_that_confirms_it(cli):
    cli.init()
    r = cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        "110105194912310021",
        "--temperature",
        "36.5",
        pin=SUPERVISOR_PIN,
        env=ZH,
        check=False,
    )
    assert r.returncode != 0 and "--confirm-check-digit" in r.stderr, r.stderr
    assert "110105194912310021" not in r.stderr


# -- 16: a full-data export needs a reason, and the reason is audited ----------------------


def _passage(cli) -> None:
    cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        "11010519491231002X",
        "--temperature",
        "36.5",
        pin=SUPERVISOR_PIN,
    )


def test_cli_full_export_without_a_reason_is_one_clear_line_and_writes_nothing(cli, tmp_path):
    cli.init()
    _passage(cli)
    out = tmp_path / "full.csv"
    r = cli.run(
        "export", "passages", "--full", "--out", str(out), pin=SUPERVISOR_PIN, env=ZH, check=False
    )
    assert r.returncode != 0 and not out.exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "理由" in lines[0] and "--reason" in lines[0], r.stderr
    blank = cli.run(
        "export", "passages", "--full", "--reason", "  ", "--out", str(out),
        pin=SUPERVISOR_PIN, env=ZH, check=False,
    )  # fmt: skip
    assert blank.returncode != 0 and not out.exists()


def test_cli_full_export_takes_the_reason_into_the_audit_entry(cli, tmp_path):
    cli.init()
    _passage(cli)
    out = tmp_path / "full.csv"
    cli.run(
        "export", "passages", "--full", "--reason", "疾控流调", "--out", str(out),
        pin=SUPERVISOR_PIN, env=ZH,
    )  # fmt: skip
    assert "11010519491231002X" in out.read_text("utf-8-sig")
    entry = cli.json("audit", "list", "--action", "export", "--limit", "1", env=ZH)[0]
    assert entry["detail"]["full"] is True and entry["detail"]["reason"] == "疾控流调"
    shown = cli.run("audit", "list", "--action", "export", "--limit", "1", env=ZH).stdout
    assert "理由 疾控流调" in shown


def test_library_full_export_refuses_without_a_reason(store, tmp_path):
    from fieldkit.errors import FieldkitError
    from fieldkit.reports import export

    with pytest.raises(FieldkitError) as caught:
        export(store, "passages", tmp_path / "full.xlsx", full=True)
    assert "理由" in caught.value.render("zh")
    assert not (tmp_path / "full.xlsx").exists()
    export(store, "passages", tmp_path / "full.xlsx", full=True, reason="疾控流调")
    assert store.audit.entries(1, "export")[0]["detail"]["reason"] == "疾控流调"


async def _supervisor_app(settings, pilot_store):
    return make_app(settings, pilot_store)


async def test_tui_full_export_asks_for_the_reason_and_audits_it(settings, store, tmp_path):
    from textual.widgets import Checkbox, Input, Static

    from fieldkit.ui.exports_dialog import ExportDialog

    app = make_app(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(ExportDialog("passages"))
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        assert dialog.query_one("#export-reason", Input).region.height == 1  # visible at 80×24
        full = tmp_path / "full.csv"
        dialog.query_one("#export-format").value = "csv"
        dialog.query_one("#export-full", Checkbox).value = True
        await pilot.pause()
        dialog.query_one("#export-path", Input).value = str(full)
        dialog.query_one("#pin-pin", Input).value = SUPERVISOR_PIN
        await pilot.pause()
        await pilot.press("f10")
        await _settle(pilot)
        assert isinstance(app.screen, ExportDialog) and not full.exists()
        said = str(dialog.query_one("#dialog-message", Static).render())
        assert "理由" in said, said
        dialog.query_one("#export-reason", Input).value = "疾控流调"
        await pilot.press("f10")
        await _settle(pilot)
        assert not isinstance(app.screen, ExportDialog)
        assert full.exists()
    entry = store.audit.entries(1, "export")[0]
    assert entry["detail"]["full"] is True and entry["detail"]["reason"] == "疾控流调"


async def _settle(pilot) -> None:
    await _settle_workers(pilot, 3)


# -- 22: text that fits 80 columns ----------------------------------------------------------


def screen_lines(app) -> list[str]:
    """The terminal as drawn, one string per row, wide characters counted once."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def cell_width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


async def test_empty_chart_says_no_data_inside_its_box(settings, store):
    from fieldkit.ui.reports_screen import ReportsScreen

    app = make_app(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.push_screen(ReportsScreen())
        await _settle(pilot)
        for chart in ("1", "2", "3"):
            await pilot.press(chart)
            await _settle(pilot)
            lines = screen_lines(app)
            hit = [line for line in lines if "暂无数据" in line]
            assert hit, "\n".join(lines)
            top = next(i for i, line in enumerate(lines) if "╭" in line)
            bottom = next(i for i, line in enumerate(lines) if "╰" in line)
            # every row of the panels has its box borders at the same columns
            borders = {
                tuple(cell_width(line[:i]) for i, ch in enumerate(line) if ch == "│")
                for line in lines[top + 1 : bottom]
                if "┌" not in line and "└" not in line
            }
            assert len(borders) == 1, "\n".join(lines)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_status_bar_fits_80_columns_and_keeps_the_key_list(settings, store, lang):
    from fieldkit.i18n import set_language

    settings.ui.language = lang
    set_language(lang)
    app = make_app(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        app.status = {
            "checkpoint": "东门卡口 CP-0101",
            "mode": "normal",
            "shift": "s1",
            "operator": "赵网格",
            "role": "patrol",
            "pending": 25,
            "keylist_at": None,
            "camera": "missing",
        }
        await pilot.pause()
        top = screen_lines(app)[0].rstrip()
        ending = t("status.keylist", lang, age=t("status.never", lang))
        assert top.endswith(ending), top
        assert t("status.pending", lang, n=25) in top and "赵网格" in top, top
        assert cell_width(top) <= SIZE[0]


@pytest.mark.parametrize("module", ["fieldkit.ui.gate", "fieldkit.ui.patrol"])
async def test_keys_the_footer_cannot_show_are_named_in_the_palette(settings, store, module):
    from fieldkit.ui.keyhelp import key_label

    role = "gate" if module.endswith("gate") else "patrol"
    store.keyring.add(store.operator, store.master, "李明", role, "1357")
    store.lock("test")
    app = make_app(settings, store, entries=screen_entries((module,)))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        app.screen.query_one("#login-operator", Input).value = "李明"
        app.screen.query_one("#login-pin", Input).focus()
        await pilot.press(*"1357", "enter")
        await _settle(pilot)
        screen = app.screen
        assert type(screen).__module__ == module, screen
        hidden = {
            key_label(key)
            for key, bindings in screen._bindings.key_to_bindings.items()
            for b in bindings
            if not b.show and b.id and b.description
        }
        commands = list(app.get_system_commands(screen))
        said = "\n".join(f"{c.title} {c.help}" for c in commands)
        if module == "fieldkit.ui.gate":
            assert {"Ctrl+R", "Ctrl+T", "Ctrl+Y"} <= hidden
        assert all(label in said for label in hidden | {"Ctrl+L"}), (hidden, said)
        # a key's command does what the key does
        digit = [c for c in commands if "Ctrl+Y" in c.help]
        assert len(digit) <= 1


async def test_sync_screen_says_not_enrolled_in_full_not_an_identity_failure(settings, store):
    from fieldkit.ui.sync_screen import SyncScreen

    app = make_app(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await app.push_screen(SyncScreen())
        await _settle(pilot)
        await pilot.press("s")
        for _ in range(3):
            await _settle(pilot)
        lines = screen_lines(app)
        shown = "".join(line.strip() for line in lines)
        failed = [line for line in lines if "同步失败" in line]
        assert failed and "未登记" in failed[0] and "身份验证失败" not in shown, "\n".join(lines)
        assert "fieldkitenroll地址令牌" in shown.replace(" ", ""), "\n".join(lines)


# -- 27: one word for one thing -------------------------------------------------------------

# The words chosen (REQUIREMENTS names none): 场内 (not 在内), 未查验码 (not 无码), 未测体温
# (not 未测温); the supervisor's screen is 值班台, its key o.
_RETIRED = {
    "在内": re.compile(r"(?<!包含)在内"),
    "无码": re.compile(r"无码"),
    "未测温": re.compile(r"未测温"),
    "主管台": re.compile(r"主管台"),
    "人次…此人": re.compile(r"人次[^。]*此人"),
}


@pytest.mark.parametrize("word", sorted(_RETIRED))
def test_chinese_catalogues_use_one_word_for_one_thing(word):
    found = {k: v for k, v in catalogue("zh").items() if _RETIRED[word].search(v)}
    assert found == {}


def test_the_no_shift_toast_names_the_screen_and_its_key():
    text = t("gate.no_shift_warning", "zh")
    assert "值班台" in text and "o" in text and "O）" not in text


async def test_quit_dialog_says_its_keys_once(settings, store):
    from textual.widgets import Static

    from fieldkit.reports.shiftwork import open_shift
    from fieldkit.ui.supervisor_common import ConfirmDialog

    open_shift(store, "early", by=store.operator)
    app = make_app(settings, store, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("ctrl+q")
        await _settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        said = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert said.count("F10") == 1 and said.lower().count("esc") == 1, said
        await pilot.press("n")
        await _settle(pilot)


async def test_report_chart_legend_and_its_keys_are_not_cut(settings, store):
    from fieldkit.ui.reports_screen import ReportsScreen

    app = make_app(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await app.push_screen(ReportsScreen())
        await _settle(pilot)
        for chart in ("1", "2", "3"):
            await pilot.press(chart)
            await _settle(pilot)
            shown = "".join(screen_lines(app))
            assert "[1/2/3]" in shown, "\n".join(screen_lines(app))
            assert t("chart.fever_series", "zh", threshold="37.3") in shown or chart != "2"


def test_operator_list_and_status_rows_line_up_in_chinese(cli):
    cli.init()
    cli.run(
        "operator", "add", "李明明", "--role", "gate", "--pin-stdin",
        stdin=f"{SUPERVISOR_PIN}\n1357\n1357\n", env=ZH,
    )  # fmt: skip
    cli.run("audit", "verify", "--operator", "王芳", pin=SUPERVISOR_PIN, env=ZH)  # a login
    rows = cli.run("operator", "list", env=ZH).stdout.strip().splitlines()
    assert len(rows) == 2
    starts = {cell_width(row[: row.index("上次登录")]) for row in rows}
    assert len(starts) == 1, rows
    assert not re.search(r"\dT\d|\+00:00", "\n".join(rows)), rows
    status = cli.run("status", env=ZH).stdout.splitlines()
    at = {}
    for line in status:
        label, _, rest = line.partition(" ")
        if rest and 1 < len(label) <= 4:
            at[label] = cell_width(line) - cell_width(rest.lstrip())
    assert at["数据库"] == at["密钥"] == at["锚点"] == at["审计"], at
