"""`make bench` (tools/bench.py): what it measures and the shape of its report, without synthesizing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import bench


def _fake_runs(walls: dict[str, list[float]]):
    calls: list[str] = []

    def run(code: str, outdir: Path, app_dir: Path) -> bench.Sample:
        kind = "floor" if code == bench.FLOOR_APP else "full" if app_dir == bench.REPO_ROOT else "baseline"
        calls.append(kind)
        wall = walls[kind][sum(1 for c in calls if c == kind) - 1]
        return bench.Sample(wall=wall, cpu=wall / 2)

    return run, calls


def test_floor_and_full_alternate_and_the_ratio_is_of_medians(tmp_path):
    run, calls = _fake_runs({"floor": [4.0, 9.0, 5.0], "full": [10.0, 30.0, 12.0]})
    results = bench.measure_synth(3, tmp_path, run)
    assert calls == ["floor", "full"] * 3, "floor and full alternate, so the machine's load hits both alike"
    assert results["floor_wall_s"] == 5.0
    assert results["full_wall_s"] == 12.0
    assert results["ratio_wall"] == pytest.approx(12.0 / 5.0)
    assert results["ratio_cpu"] == pytest.approx(6.0 / 2.5)


def test_a_baseline_is_timed_in_the_same_rounds(tmp_path):
    run, calls = _fake_runs({"floor": [4.0, 4.0], "full": [8.0, 8.0], "baseline": [12.0, 10.0]})
    results = bench.measure_synth(2, tmp_path, run, baseline=tmp_path / "baseline")
    assert calls == ["floor", "baseline", "full"] * 2
    assert results["baseline_wall_s"] == 11.0
    assert results["baseline_ratio_wall"] == pytest.approx(11.0 / 4.0)
    assert results["ratio_wall"] == pytest.approx(2.0)


def test_the_floor_gets_the_same_context_as_the_full_app():
    for code in (bench.FLOOR_APP, bench.FULL_APP):
        assert "cdk.App(context=app_context(), outdir=sys.argv[1])" in code
    assert "sns.Topic" in bench.FLOOR_APP
    assert "define_app(app, ENVIRONMENTS, DEPLOYMENT)" in bench.FULL_APP


def test_the_report_has_the_machine_the_ratio_the_diff_and_a_json_line():
    results = {
        "machine": {"nproc": "2", "cpu": "AMD EPYC", "memory": "24 GiB", "python": "3.11.7", "load_average": "1.0 1.0 1.0"},
        "runs": 5, "floor_wall_s": 4.0, "floor_cpu_s": 3.5, "full_wall_s": 7.0, "full_cpu_s": 8.0,
        "ratio_wall": 1.75, "ratio_cpu": 8.0 / 3.5, "diff_cold_s": 20.0, "diff_warm_s": 9.0,
        "test_suite_s": 300.0, "test_suite_outcome": "passed",
    }  # fmt: skip
    text = bench.render(results)
    lines = text.splitlines()
    assert lines[0].startswith("Machine: 2 CPUs (AMD EPYC), 24 GiB RAM")
    assert any("full / floor" in line and "1.75x" in line and "missed" in line for line in lines)
    assert any("make diff, warm" in line and "9.0 s" in line for line in lines)
    assert any("test suite" in line and "300 s" in line for line in lines)
    assert json.loads(lines[-1]) == results
    assert "test suite" not in bench.render(
        {k: v for k, v in results.items() if not k.startswith("test_suite")}
    )


def test_runs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--runs", "0"])
    assert "--runs must be at least 1" in capsys.readouterr().err
