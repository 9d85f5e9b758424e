import tomllib
from pathlib import Path

import pytest

from fieldkit.config import Settings, documented_keys, load_settings
from fieldkit.errors import ConfigError

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_need_no_file(monkeypatch, tmp_path):
    monkeypatch.delenv("FIELDKIT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing-here"))
    s = load_settings()
    assert s.source is None
    assert s.rules.fever_threshold == 37.3
    assert s.rules.test_validity_days == 7
    assert s.rules.isolation_days == 14
    assert s.ui.language == "zh"


def test_example_file_documents_every_key_with_its_default():
    example = tomllib.loads((ROOT / "config.example.toml").read_text("utf-8"))
    text = (ROOT / "config.example.toml").read_text("utf-8")
    for section, key, default, doc in documented_keys():
        assert key in example.get(section, {}), f"{section}.{key} missing from config.example.toml"
        assert example[section][key] == default, f"{section}.{key}: example differs from default"
        assert f"# {doc}" in text, f"{section}.{key} has no comment in the example"
    s = load_settings(ROOT / "config.example.toml")
    assert s.source == ROOT / "config.example.toml"


def test_env_and_flag_choose_file_and_data_dir(monkeypatch, tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('[checkpoint]\nname = "北门"\n', encoding="utf-8")
    b = tmp_path / "b.toml"
    b.write_text('[checkpoint]\nname = "南门"\n', encoding="utf-8")
    monkeypatch.setenv("FIELDKIT_CONFIG", str(a))
    monkeypatch.setenv("FIELDKIT_HOME", str(tmp_path / "home-env"))
    assert load_settings().checkpoint.name == "北门"
    assert load_settings().data_dir == tmp_path / "home-env"
    s = load_settings(b, tmp_path / "home-flag")
    assert s.checkpoint.name == "南门" and s.data_dir == tmp_path / "home-flag"


@pytest.mark.parametrize(
    "body, needle",
    [
        (
            '[rules]\nfever_threshold = "high"\n',
            "key rules.fever_threshold: expected a number from 36.0 to 40.0, found 'high'",
        ),
        (
            "[rules]\nfever_threshold = 45\n",
            "key rules.fever_threshold: expected a number from 36.0 to 40.0, found 45",
        ),
        (
            "[rules]\ntest_validity_days = 2.5\n",
            "key rules.test_validity_days: expected a whole number from 1 to 30, found 2.5",
        ),
        (
            '[checkpoint]\narea_mode = "lockdown"\n',
            "key checkpoint.area_mode: expected one of normal, low, medium, high, sealed, "
            "found 'lockdown'",
        ),
        ('[ui]\nlanguage = "fr"\n', "key ui.language: expected one of zh, en, found 'fr'"),
        (
            '[monitoring]\nmorning_window = "6-10"\n',
            "key monitoring.morning_window: expected HH:MM-HH:MM, found '6-10'",
        ),
        (
            '[rules]\ntest_required_in = ["medium", "red"]\n',
            "key rules.test_required_in: expected a list of area modes",
        ),
        ("[rules]\nfever = 38\n", "unknown key rules.fever"),
        ("[gate]\nx = 1\n", "unknown section [gate]"),
        (
            "[security]\nscrypt_n = 3000\n",
            "key security.scrypt_n: expected a power of two, found 3000",
        ),
        (
            "[rules]\ntemperature_min = 36.0\ntemperature_max = 38.0\nfever_threshold = 37.3\n"
            "[rules.x]\n",
            "unknown key rules.x",
        ),
        (
            '[camera]\nhealth_code_patterns = ["(unclosed"]\n',
            "key camera.health_code_patterns: expected valid regular expressions",
        ),
        ("rules = 3\n", "key rules: expected a table [rules], found 3"),
    ],
)
def test_bad_value_names_file_key_expected_and_found(tmp_path, body, needle):
    f = tmp_path / "bad.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(f)
    message = str(err.value)
    assert message.startswith(str(f) + ": ")
    assert needle in message
    assert "\n" not in message


def test_broken_toml_and_missing_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[rules\nfever_threshold = 37", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(f)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_valid_overrides_are_typed(tmp_path):
    f = tmp_path / "ok.toml"
    f.write_text(
        '[rules]\nfever_threshold = 37\nsupply_whitelist = ["京A12345"]\n'
        "[ui]\nidle_lock_minutes = 2\n",
        encoding="utf-8",
    )
    s = load_settings(f)
    assert s.rules.fever_threshold == 37.0 and isinstance(s.rules.fever_threshold, float)
    assert s.ui.idle_lock_minutes == 2.0
    assert s.rules.supply_whitelist == ["京A12345"]
    assert Settings().rules.supply_whitelist == []  # defaults are not shared between instances
