"""`burst simulate`: the real planner, reconciler and store on simulated clouds and
virtual time. Small fleets here (the 1,000-host figures are in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from burst.config import EXAMPLE, load_config
from burst.errors import ConfigError
from burst.simulate.profile import Profile, load_profile
from burst.simulate.run import simulate

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


@pytest.fixture
def fake_config(tmp_path):
    path = tmp_path / "burst.toml"
    path.write_text(EXAMPLE)
    return load_config(path)


def test_a_burst_on_the_default_profile_is_near_its_floor_and_the_same_every_run(fake_config):
    first = simulate(fake_config, {"web": 1000}, load_profile(), hosts=100)
    again = simulate(fake_config, {"web": 1000}, load_profile(), hosts=100)
    assert first.hosts == 100 and first.tiers == {"cloud": 100}
    assert first.seconds is not None and first.floor > 0
    assert first.floor <= first.seconds <= 1.05 * first.floor, (first.seconds, first.floor)
    assert first.sla_met == (first.seconds <= first.sla_seconds)
    assert (again.seconds, again.floor) == (first.seconds, first.floor)  # seeded draws, virtual time
    # 100 hosts over the two zones of the example: one launch call per zone
    assert first.api_calls["cloud"]["launch"] == 2 and first.throttled == 0
    assert first.timeline[-1][1:] == (100, 100)  # every host ready, every host's tasks running
    assert first.down_seconds is not None


def test_pulling_the_image_over_one_line_from_the_data_centre_is_the_bottleneck(fake_config):
    line = simulate(fake_config, {"web": 1000}, load_profile(EXAMPLES / "simulate-datacentre-line.toml"), hosts=100)
    mirror = simulate(fake_config, {"web": 1000}, load_profile(), hosts=100)
    assert line.bottleneck == "image pull" and mirror.bottleneck != "image pull"
    # 100 pulls of 300 MB over 1 Gbit/s hold the line for 240 s in all
    assert line.critical_chain["image pull"] > 100 > mirror.critical_chain["image pull"]
    assert line.seconds > mirror.seconds


def test_a_stock_out_of_the_first_cloud_at_minute_one_escalates_to_the_next_tier():
    config = load_config(EXAMPLES / "simulate-two-clouds.toml")
    result = simulate(config, {"web": 1600}, load_profile(EXAMPLES / "simulate-stockout.toml"), hosts=200)
    assert result.hosts == 200 and result.hosts_failed > 0
    assert result.tiers.get("aws-sg", 0) > 0, result.tiers  # replacements after minute one went on
    assert result.seconds is not None and result.sla_met == (result.seconds <= 300)


def test_hosts_stuck_booting_on_the_first_tier_are_escalated_in_time_to_make_the_sla():
    """Without escalation they would wait for the phase timeout (240 s) first and miss it."""
    config = load_config(EXAMPLES / "simulate-two-clouds.toml")
    result = simulate(config, {"web": 800}, load_profile(EXAMPLES / "simulate-stall.toml"), hosts=100)
    assert result.tiers == {"aws-sg": 100} and result.escalated == 100
    assert result.sla_met and result.seconds < 300


def test_the_cli_prints_json_with_the_ratio_and_writes_an_html_chart(tmp_path):
    (tmp_path / "burst.toml").write_text(EXAMPLE)
    page = tmp_path / "sim.html"
    proc = subprocess.run([sys.executable, "-m", "burst", "simulate", "--hosts", "50", "-r", "web=500", "--json",
                           "--html", str(page)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["hosts"] == 50 and data["ratio"] >= 1.0 and data["sla_met"] in (True, False)
    assert "<svg" in page.read_text() and "SLA" in page.read_text()


def test_a_bad_profile_is_one_line_naming_the_key(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[cloud]\nboot = { median = 30, p95 = 10 }\n")
    with pytest.raises(ConfigError, match="cloud.boot"):
        load_profile(bad)
    bad.write_text("[image]\nregistery = 'region'\n")
    with pytest.raises(ConfigError, match="image.registery"):
        load_profile(bad)
    (tmp_path / "burst.toml").write_text(EXAMPLE)
    proc = subprocess.run([sys.executable, "-m", "burst", "simulate", "-r", "web=8", "--profile", str(bad)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert Profile().cloud.max_batch == 100
