"""Town rules: ``fieldkit-server rules FILE`` → signed update → the gate decides by them.

The device's config file sets its own fever threshold (37.2 °C, not the 37.3 default) so that
"back to the config" can be told apart from "back to the defaults".
"""

from __future__ import annotations

import json

import pytest

from fieldkit.cli import main as device_main
from fieldkit.config import RuleSettings, load_settings, validate_rules
from fieldkit.domain import Outcome
from fieldkit.errors import ConfigError
from fieldkit.gate import GateEntry, GateService
from fieldkit.store import open_store
from sync import client as sc
from sync.server.app import create_app
from sync.server.cli import main as server_main
from sync.server.repository import open_repository
from sync.server.town import ServerSettings, TownKeys
from sync.testing import SyncASGITransport

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

CONFIG = (
    "[security]\nscrypt_n = 1024\nargon2_memory_kib = 1024\nargon2_time_cost = 1\n"
    "argon2_parallelism = 1\nmin_pin_length = 4\n\n[rules]\nfever_threshold = 37.2\n"
)


def server(capsys, *argv):
    code = server_main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


class Town:
    """A town made by the real ``fieldkit-server init``, its app served in-process."""

    def __init__(self, directory, capsys) -> None:
        self.dir, self.capsys = directory, capsys
        code, _, err = server(capsys, "init", "--data-dir", directory)
        assert code == 0, err
        self.repo = open_repository(None, str(directory))
        self.app = create_app(TownKeys.load(directory), self.repo, ServerSettings.load(directory))
        self.transport = SyncASGITransport(self.app)

    def push(self, path, content: str):
        path.write_text(content, encoding="utf-8")
        return server(self.capsys, "rules", path, "--data-dir", self.dir)

    def token(self) -> str:
        code, out, err = server(
            self.capsys, "device", "add", "gate-east", "--json", "--no-qr", "--data-dir", self.dir
        )
        assert code == 0, err
        return json.loads(out)["token"]

    def close(self) -> None:
        self.repo.close()
        self.transport.shutdown()


@pytest.fixture
def town(tmp_path, capsys):
    t = Town(tmp_path / "town", capsys)
    yield t
    t.close()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def open_device(config, tmp_path, *, create=False):
    settings = load_settings(config, tmp_path / "device")
    settings.sync.timeout_s = 2.0
    return open_store(settings, create=create)


@pytest.fixture
def device(town, config, tmp_path):
    store = open_device(config, tmp_path, create=True)
    store.setup("sup", "1234", checkpoint_name="East gate", checkpoint_code="CP-E")
    sc.enroll(store, "http://town", town.token(), transport=town.transport)
    yield store
    store.close()


def sync(store, town) -> sc.SyncReport:
    report = sc.run_sync(store, store.settings, transport=town.transport, operator="sup")
    assert report.ok, report.error
    return report


def passage_at(gate: GateService, temperature: float):
    ev, _ = gate.commit(
        GateEntry(
            direction="in",
            id_number="11010519491231002X",
            name="张三",
            temperature=temperature,
            code_colour="green",
            category="resident",
            source="cli",
        )
    )
    return ev.decision


def rule_audits(store) -> list[dict]:
    return [e for e in store.audit.entries(100, "setting_change") if e["operator"] == "town"]


def test_pushed_fever_threshold_refers_at_the_gate_and_a_later_push_reverts_it(
    town, device, tmp_path
):
    gate = GateService(device)  # made before the sync, as a running gate screen's is
    held_rules = device.settings.rules
    before = passage_at(gate, 37.1)
    assert before.outcome == Outcome.ADMIT and "fever" not in [r.code for r in before.reasons]

    code, out, err = town.push(
        tmp_path / "rules.json", '{"fever_threshold": 37.0, "test_validity_days": 3}'
    )
    assert (code, err) == (0, "")
    assert "  fever_threshold = 37.0  (until now each device's config)" in out.splitlines()
    assert "  test_validity_days = 3  (until now each device's config)" in out.splitlines()

    report = sync(device, town)
    assert report.rules_changed and report.rules_changed_keys == [
        "fever_threshold",
        "test_validity_days",
    ]
    assert "town rules fever_threshold, test_validity_days changed" in report.summary()
    assert report.to_dict()["rules_changed_keys"] == ["fever_threshold", "test_validity_days"]
    assert device.settings.rules is held_rules
    assert (held_rules.fever_threshold, held_rules.test_validity_days) == (37.0, 3)
    after = passage_at(gate, 37.1)
    assert after.outcome == Outcome.REFER
    fever = [r for r in after.reasons if r.code == "fever"]
    assert fever and fever[0].params["threshold"] == "37.0"

    # The next push is the complete set: fever_threshold left out goes back to the config's.
    code, out, err = town.push(tmp_path / "rules2.json", '{"rules": {"test_validity_days": 3}}')
    assert code == 0, err
    assert "  fever_threshold: back to each device's config  (was 37.0)" in out.splitlines()
    assert "  test_validity_days = 3  (unchanged)" in out.splitlines()
    report = sync(device, town)
    assert report.rules_changed_keys == ["fever_threshold"]
    assert (held_rules.fever_threshold, held_rules.test_validity_days) == (37.2, 3)
    assert passage_at(gate, 37.1).outcome == Outcome.ADMIT

    # Audited on the device, newest first, with each change from → to.
    revert, first = rule_audits(device)
    assert first["detail"]["changes"] == {
        "fever_threshold": {"from": 37.2, "to": 37.0},
        "test_validity_days": {"from": 7, "to": 3},
    }
    assert revert["detail"]["changes"] == {"fever_threshold": {"from": 37.0, "to": 37.2}}
    assert revert["detail"]["town_rules"] == {"test_validity_days": 3}
    assert device.audit.verify()[1] is None

    # {} means: every device back to its own config.
    code, out, err = town.push(tmp_path / "none.json", "{}")
    assert code == 0, err
    assert "every device goes back to its own config" in out
    assert "  test_validity_days: back to each device's config  (was 3)" in out.splitlines()
    report = sync(device, town)
    assert report.rules_changed_keys == ["test_validity_days"]
    assert held_rules == device.settings.config_rules
    assert held_rules.test_validity_days == 7 and device.kv.get("town_rules") == {}


def test_a_toml_rules_table_is_pushed_like_json(town, device, tmp_path):
    code, out, err = town.push(
        tmp_path / "rules.toml", "[rules]\nfever_threshold = 37\ntest_required_in = ['high']\n"
    )
    assert code == 0, err
    assert "  test_required_in = high  (until now each device's config)" in out.splitlines()
    sync(device, town)
    assert device.settings.rules.fever_threshold == 37.0
    assert device.settings.rules.test_required_in == ["high"]
    assert isinstance(device.settings.rules.fever_threshold, float)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "high.json",
            '{"fever_threshold": "high"}',
            "key rules.fever_threshold: expected a number from 36.0 to 40.0, found 'high'",
        ),
        (
            "unknown.json",
            '{"fever_threshold": 37.0, "fever_limit": 37.0}',
            "unknown key rules.fever_limit; expected one of fever_threshold, temperature_min",
        ),
        # The ranges keep min below max (min ≤ 36, max ≥ 38): the bound out of range is named.
        (
            "min-max.json",
            '{"temperature_min": 36.0, "temperature_max": 36.0}',
            "key rules.temperature_max: expected a number from 38.0 to 45.0, found 36.0",
        ),
        (
            "modes.json",
            '{"test_required_in": ["high", "lockdown"]}',
            (
                "key rules.test_required_in: expected a list of area modes "
                "(normal, low, medium, high, "
                "sealed), found ['high', 'lockdown']"
            ),
        ),
        ("list.json", "[37.0]", "key rules: expected a table of rule settings, found [37.0]"),
        ("broken.json", '{"fever_threshold": 37.0', "not valid JSON"),
        (
            "config.toml",
            "[rules]\nfever_threshold = 37.0\n[checkpoint]\nname = 'x'\n",
            (
                "expected only a [rules] table (the other settings stay each device's own), "
                "found [checkpoint]"
            ),
        ),
        (
            "days.toml",
            "[rules]\ntest_validity_days = 3.5\n",
            "key rules.test_validity_days: expected a whole number from 1 to 30, found 3.5",
        ),
    ],
)
def test_a_bad_rules_file_is_refused_and_nothing_reaches_the_device(
    town, device, tmp_path, name, content, message
):
    code, out, err = town.push(tmp_path / name, content)
    assert code == 2 and out == ""
    assert err.startswith(f"fieldkit-server: {tmp_path / name}: ")
    assert message in err and len(err.strip().splitlines()) == 1
    assert town.repo.latest_change("rules") is None
    report = sync(device, town)
    assert not report.rules_changed and device.kv.get("town_rules") is None
    assert device.settings.rules.fever_threshold == 37.2
    assert rule_audits(device) == []


def test_device_applies_the_good_keys_and_warns_about_the_bad(town, device):
    # An older or wrong server stores whatever it was given: the device checks for itself.
    town.repo.add_changes(
        "rules", [{"fever_threshold": 37.0, "test_validity_days": "three", "fever_limit": 1}], 1.0
    )
    report = sync(device, town)
    assert report.rules_changed_keys == ["fever_threshold"]
    assert device.settings.rules.fever_threshold == 37.0
    assert device.settings.rules.test_validity_days == 7
    assert device.kv.get("town_rules") == {"fever_threshold": 37.0}
    skipped = sorted(w for w in report.warnings if "rule skipped" in w)  # signed: keys sorted
    assert skipped == [
        (
            "town server: key rules.test_validity_days: expected a whole number from 1 to 30, "
            "found 'three': rule skipped, the config file's value applies; tell the town office"
        ),
        "town server: unknown key rules.fever_limit; expected one of "
        + ", ".join(RuleSettings.__dataclass_fields__)
        + ": rule skipped, the config file's "
        "value applies; tell the town office",
    ]
    (entry,) = rule_audits(device)
    assert entry["detail"]["changes"] == {"fever_threshold": {"from": 37.2, "to": 37.0}}
    assert len(entry["detail"]["skipped"]) == 2

    # A rules document that is not a table at all changes nothing and says so.
    town.repo.add_changes("rules", ["not rules"], 2.0)  # type: ignore[list-item]
    report = sync(device, town)
    assert not report.rules_changed and device.settings.rules.fever_threshold == 37.0
    assert any(w.startswith("the town's rules were not applied") for w in report.warnings)


def test_town_rules_survive_reopening_and_show_in_status(town, device, config, tmp_path, capsys):
    town.push(tmp_path / "rules.json", '{"fever_threshold": 37.0}')
    sync(device, town)
    settings = device.settings
    device.close()

    # A new run: settings read again from the file, the store applies the town's rules.
    again = open_device(config, tmp_path)
    try:
        assert again.settings.rules.fever_threshold == 37.0
        assert again.settings.config_rules.fever_threshold == 37.2
        again.unlock("sup", "1234")
        assert passage_at(GateService(again), 37.1).outcome == Outcome.REFER
    finally:
        again.close()

    # The same Settings object opened again keeps the file's value as "config", not the town's.
    same = open_store(settings)
    try:
        assert same.settings.rules.fever_threshold == 37.0
        same.unlock("sup", "1234")
        town.push(tmp_path / "none.json", "{}")
        sync(same, town)
        assert same.settings.rules.fever_threshold == 37.2
        town.push(tmp_path / "rules.json", '{"fever_threshold": 37.0}')
        sync(same, town)
    finally:
        same.close()

    capsys.readouterr()
    args = ["--config", str(config), "--data-dir", str(tmp_path / "device"), "--lang", "en"]
    assert device_main([*args, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["town_rules"] == {"fever_threshold": 37.0}
    assert device_main([*args, "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "town rules fever_threshold 37.0 (config 37.2)" in lines


def test_status_without_town_rules(device, config, tmp_path, capsys):
    device.close()
    args = ["--config", str(config), "--data-dir", str(tmp_path / "device")]
    assert device_main([*args, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["town_rules"] == {}
    assert device_main([*args, "status"]) == 0
    assert "town rules none (the config file's rules apply)" in capsys.readouterr().out.splitlines()


def test_validate_rules_is_the_config_files_check():
    assert validate_rules({"fever_threshold": 37, "supply_whitelist": ["京A12345"]}, "f") == {
        "fever_threshold": 37.0,
        "supply_whitelist": ["京A12345"],
    }
    with pytest.raises(
        ConfigError,
        match=r"^f: key rules.isolation_days: expected a whole "
        r"number from 1 to 60, found 0$",
    ):
        validate_rules({"isolation_days": 0}, "f")
    # The min < max cross-check, over the values it would be applied to.
    base = RuleSettings(temperature_max=35.0)  # not reachable from a checked file; seen here
    with pytest.raises(
        ConfigError,
        match=r"key rules.temperature_min: expected below "
        r"rules.temperature_max \(35.0\), found 35.0",
    ):
        validate_rules({"temperature_min": 35.0}, "f", base)
    problems: list[str] = []
    assert validate_rules(
        {"temperature_min": 35.0, "isolation_days": 10}, "f", base, problems=problems
    ) == {"isolation_days": 10}
    assert len(problems) == 1 and "temperature_min" in problems[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_latest_change_is_the_newest_of_its_kind(backend, tmp_path):
    from sync.testing import drop_repo, make_repo, pg_available

    if backend == "postgresql" and pg_available():
        pytest.skip(f"PostgreSQL unavailable: {pg_available()}")
    repo = make_repo(backend, str(tmp_path))
    try:
        assert repo.latest_change("rules") is None
        repo.add_changes("rules", [{"fever_threshold": 37.0}], 1.0)
        repo.add_changes("mode", [{"mode": "high"}], 2.0)
        repo.add_changes("rules", [{"isolation_days": 10}], 3.0)
        repo.add_changes("keyperson", [{"id_hash": "h", "category": "密接"}], 4.0)
        latest = repo.latest_change("rules")
        assert (latest.data, latest.created_at) == ({"isolation_days": 10}, 3.0)
        assert repo.latest_change("mode").data == {"mode": "high"}
    finally:
        drop_repo(repo)
