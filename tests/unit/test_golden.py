"""The golden-values file (``station.golden``) is a pydantic model: the shipped file reads, and one error names the
file and lists every problem with its key path, the value and what is allowed."""

from __future__ import annotations

import tomllib

import pytest

from station.errors import ConfigError
from station.golden import ANDROID_ILLUMINANTS, DEFAULT_GOLDEN, ILLUMINANTS, load_golden_awb

GOOD = '''[meta]
product = "m-phone"
version = "1.0"
[awb.main.illuminant1]
cct_k = 2850
android_illuminant = "STANDARD_A"
r_g = 0.8
b_g = 0.3
[awb.main.illuminant2]
cct_k = 6500
android_illuminant = "D65"
r_g = 0.5
b_g = 0.7
'''


def test_the_shipped_file_reads_as_its_toml_says() -> None:
    golden = load_golden_awb()
    raw = tomllib.loads(DEFAULT_GOLDEN.read_text(encoding="utf-8"))["awb"]
    assert set(golden) == set(raw) == {"main", "m"}
    for sensor, table in golden.items():
        assert set(table) == set(ILLUMINANTS)
        for name, entry in table.items():
            assert entry == {"cct_k": float(raw[sensor][name]["cct_k"]), "android_illuminant":
                             raw[sensor][name]["android_illuminant"], "r_g": raw[sensor][name]["r_g"],
                             "b_g": raw[sensor][name]["b_g"]}
            assert entry["android_illuminant"] in ANDROID_ILLUMINANTS


def test_a_good_file_gives_floats(tmp_path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(GOOD)
    assert load_golden_awb(path)["main"]["illuminant1"] == {"cct_k": 2850.0, "android_illuminant": "STANDARD_A",
                                                            "r_g": 0.8, "b_g": 0.3}


def test_three_mistakes_give_one_error_listing_all_three(tmp_path) -> None:
    """A misspelt key, a wrong type and a missing table: one line, each with its key path."""
    text = GOOD.replace("r_g = 0.8", "r_gg = 0.8").replace("cct_k = 6500", 'cct_k = "daylight"')
    text = text.replace('[meta]\nproduct = "m-phone"\nversion = "1.0"\n', "")
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_golden_awb(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: 3 problems: ")
    assert "[meta] missing" in message
    assert "awb.main.illuminant1.r_gg: unknown key, did you mean r_g?" in message
    assert "awb.main.illuminant2.cct_k: 'daylight' is not a number" in message


@pytest.mark.parametrize(("edit", "expected"), [
    (('android_illuminant = "D65"', 'android_illuminant = "D66"'), "awb.main.illuminant2.android_illuminant: 'D66'"),
    (("cct_k = 6500", "cct_k = 9000"), "awb.main.illuminant2.cct_k: 9000"),
    (("b_g = 0.7", "b_g = nan"), "awb.main.illuminant2.b_g"),
    (("[awb.main.illuminant2]", "[awb.Main.illuminant2]"), "awb.Main"),
])
def test_a_bad_value_names_its_key(tmp_path, edit, expected) -> None:
    path = tmp_path / "g.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ConfigError, match=r"g\.toml: \d problems?: .*" + expected.replace(".", r"\.")):
        load_golden_awb(path)


def test_not_toml_or_not_a_file_is_one_line(tmp_path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[meta\n")
    with pytest.raises(ConfigError, match="not a readable TOML file"):
        load_golden_awb(path)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_golden_awb(tmp_path)
