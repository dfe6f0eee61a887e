import pytest

from burst.config import EXAMPLE, load_config
from burst.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "burst.toml"
    path.write_text(text)
    return path


def test_the_example_is_valid_and_relative_paths_follow_the_file(tmp_path):
    cfg = load_config(write(tmp_path, EXAMPLE))
    assert cfg.cluster.name == "demo"
    assert cfg.store_url == f"sqlite:///{tmp_path}/.burst/burst.db"
    assert cfg.tier("cloud").instance_types[0].zones == ["zone-a", "zone-b"]


@pytest.mark.parametrize("change, expected", [
    (("cpu = 4", "cpu = -4"), r"burst.toml:27: tiers\[0\].instance_types\[0\].cpu: Input should be greater than 0"),
    (('name = "demo"', 'name = "Demo"'), r"burst.toml:4: cluster.name: String should match pattern"),
    (("sla_seconds = 300", "sla_seconds = 300\nslas = 1"), r"burst.toml:\d+: cluster.slas: unknown key"),
    (("[cluster]", "[clusters]"), r"burst.toml: cluster: required key is missing"),
    (('provider = "fake"', "provider = 3"), r"burst.toml:19: tiers\[0\].provider: Input should be a valid string"),
    (("zones = [", "zones = ["), None),
    (("[cluster]", "[cluster"), r"burst.toml: not valid TOML"),
])
def test_a_bad_file_is_one_line_with_file_line_and_key(tmp_path, change, expected):
    path = write(tmp_path, EXAMPLE.replace(*change))
    if expected is None:
        load_config(path)
        return
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="burst init"):
        load_config(tmp_path / "nope.toml")


def test_names_must_be_unique(tmp_path):
    text = EXAMPLE + '\n[[services]]\nname = "web"\ncpu = 1\nmemory_gib = 1\n'
    with pytest.raises(ConfigError, match="name 'web' is used twice"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize("name", ["fake", "lab", "aliyun", "aws"])
def test_the_documented_examples_are_valid(name):
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "docs" / "examples" / f"{name}.toml")
    assert cfg.tiers and cfg.services
