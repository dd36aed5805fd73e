"""bcdr predict: anomaly scores and forecasts of metric files, as a user runs them."""
import json
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

NAB = Path("/work/shared/data/nab/data")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def write_series(path, values, step=timedelta(minutes=5), header=True):
    lines = ["timestamp,value"] if header else []
    for i, v in enumerate(values):
        t = (T0 + i * step).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{t},{v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def noisy(n, level=50.0, seed=1):
    rnd = random.Random(seed)
    return [round(level + rnd.uniform(-1, 1), 3) for _ in range(n)]


def parse_csv(out):
    lines = out.splitlines()
    assert lines[0] == "timestamp,value,anomaly_score"
    return [line.rsplit(",", 2) for line in lines[1:]]


def test_anomalies_one_row_per_input_row_and_spike_found(bcdr, tmp_path):
    values = noisy(2000)
    values[1500] = 90
    f = write_series(tmp_path / "m.csv", values)
    r = bcdr("predict", "anomalies", f)
    assert r.code == 0, r
    rows = parse_csv(r.out)
    assert len(rows) == 2000
    scores = [float(s) for _, _, s in rows]
    assert all(0 <= s <= 1 for s in scores)
    assert rows[1500][1] == "90" and scores[1500] >= 0.5
    quiet = scores[300:1500] + scores[1600:]
    assert max(quiet) < 0.5
    # timestamps echoed as written, in order
    assert rows[0][0] == "2024-01-01 00:00:00"


def test_anomalies_json_and_above_filter(bcdr, tmp_path):
    values = noisy(1200)
    values[1000] = 10
    f = write_series(tmp_path / "m.csv", values)
    r = bcdr("predict", "anomalies", f, "--json", "--above", "0.5")
    assert r.code == 0, r
    rows = r.json_lines()
    assert [row["value"] for row in rows] == [10]
    assert rows[0]["timestamp"] == (T0 + 1000 * timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[0]["anomaly_score"] >= 0.5


def test_anomalies_from_stdin(bcdr, tmp_path):
    text = "\n".join(f"{1700000000 + 60 * i},{i % 7}" for i in range(300)) + "\n"
    r = bcdr("predict", "anomalies", "-", input=text)
    assert r.code == 0, r
    assert len(parse_csv(r.out)) == 300


def test_bad_input_has_defined_behaviour(bcdr, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("timestamp,value\n"
                 "2024-01-01 00:00:00,1\n"
                 "2024-01-01 00:05:00,nan\n"
                 "2024-01-01 00:10:00,\n"
                 "not a time,3\n"
                 "2024-01-01 00:02:00,4\n"          # out of order
                 "2024-01-01 00:15:00,1e400\n"      # overflows: missing
                 "2024-01-01 00:15:00,-1e300\n"     # repeated timestamp, huge value
                 "2024-01-01 00:20:00,5\n")
    r = bcdr("predict", "anomalies", f)
    assert r.code == 3, r
    rows = parse_csv(r.out)
    assert len(rows) == 8
    assert [row[0] for row in rows][3] == "not a time"
    for _, _, s in rows:
        assert 0 <= float(s) <= 1 and not math.isnan(float(s))
    assert "bad timestamp" in r.err and "missing value" in r.err


def test_constant_series_scores_zero(bcdr, tmp_path):
    f = write_series(tmp_path / "flat.csv", [7] * 1000)
    r = bcdr("predict", "anomalies", f)
    assert r.code == 0, r
    assert {s for _, _, s in parse_csv(r.out)} == {"0.000000"}


def test_overlong_line_is_refused(bcdr, tmp_path):
    f = tmp_path / "long.csv"
    f.write_text("2024-01-01 00:00:00,1\n2024-01-01 00:05:00," + "9" * 10000 + "\n")
    r = bcdr("predict", "anomalies", f)
    assert r.code == 1, r
    assert "longer than 4096 bytes" in r.err


def test_usage_errors(bcdr, tmp_path):
    assert bcdr("predict", "anomalies").code == 2
    assert bcdr("predict", "anomalies", "a.csv", "b.csv").code == 2
    assert bcdr("predict", "anomalies", "a.csv", "--above", "2").code == 2
    assert bcdr("predict", "forecast", "a.csv").code == 2            # no --horizon
    assert bcdr("predict", "forecast", "a.csv", "--horizon", "6").code == 2
    assert bcdr("predict", "forecast", "a.csv", "--horizon", "6h", "--method", "x").code == 2
    r = bcdr("predict", "anomalies", tmp_path / "missing.csv")
    assert r.code == 1 and "cannot open" in r.err


def test_forecast_time_to_threshold(bcdr, tmp_path):
    # disk usage growing 1 point per hour from 50, with two outliers
    values = [50 + i / 12 for i in range(12 * 12)]
    values[40] = 99
    values[100] = 0
    f = write_series(tmp_path / "disk.csv", values)
    r = bcdr("predict", "forecast", f, "--horizon", "48h", "--threshold", "90", "--json")
    assert r.code == 0, r
    j = r.json()
    assert j["samples"] == 144
    t = j["threshold"]
    assert t["direction"] == "rising" and t["crosses_within_horizon"] is True
    # newest value ~61.9: 28.1 h to go at 1/h
    assert abs(t["eta_s"] / 3600 - 28.1) < 1.0
    assert t["earliest_s"] <= t["eta_s"] <= (t["latest_s"] or math.inf)
    lin = [m for m in j["methods"] if m["method"] == "linear"][0]
    assert abs(lin["value"] - (values[-2] + 1 / 12 + 48)) < 1.0
    assert lin["lower"] <= lin["value"] <= lin["upper"]
    # the same in text
    r = bcdr("predict", "forecast", f, "--horizon", "6h", "--threshold", "90")
    assert r.code == 0, r
    assert "threshold 90 (rising): reached in 1d4h" in r.out


def test_forecast_seasonal(bcdr, tmp_path):
    day = 288
    values = [round(100 + 40 * math.sin(2 * math.pi * i / day), 3) for i in range(10 * day)]
    f = write_series(tmp_path / "wave.csv", values)
    r = bcdr("predict", "forecast", f, "--horizon", "6h", "--json")
    assert r.code == 0, r
    j = r.json()
    assert j["season"] == "daily"
    assert j["forecast"]["method"] == "holt-winters"
    truth = 100 + 40 * math.sin(2 * math.pi * (10 * day - 1 + 72) / day)
    assert abs(j["forecast"]["value"] - truth) < 5


def test_forecast_too_few_samples(bcdr, tmp_path):
    f = write_series(tmp_path / "two.csv", [1, 2])
    r = bcdr("predict", "forecast", f, "--horizon", "1h", "--method", "linear")
    assert r.code == 1, r
    assert "not enough samples" in r.err


@pytest.mark.skipif(not NAB.is_dir(), reason="NAB data not present")
def test_real_nab_file(bcdr):
    f = NAB / "realKnownCause" / "machine_temperature_system_failure.csv"
    r = bcdr("predict", "anomalies", f)
    assert r.code == 0, r   # its 11 out-of-order rows are scored, not errors
    rows = parse_csv(r.out)
    assert len(rows) == len(f.read_text().splitlines()) - 1
    assert all(0 <= float(s) <= 1 for _, _, s in rows)
