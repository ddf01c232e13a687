"""The bench on tiny sizes: every key of bench/results.json is written, with finite numbers and the right
structure. The benchmark's numbers themselves are not tested (they are timings); bench/run.py --quick measures
them."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run as bench  # noqa: E402


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out),
                           "--work", str(folder / "work"), "--gpu-section-on-cpu", "--peak-tflops", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"bench --smoke failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.slow  # over two minutes: every bench section at smoke size
def test_smoke_run_writes_every_key(smoke):
    results, stdout = smoke
    assert results["errors"] == {} and results["problems"] == []
    assert bench.check(results) == []
    for key in bench.NUMBER_KEYS:
        assert math.isfinite(results[key]) and results[key] > 0, key
    per_class = results["transfer_vs_scratch"]["per_class"]
    assert set(per_class) == {"2", "4"}
    for row in per_class.values():
        assert all(0 <= row[side] <= 1 for side in ("feature_extraction", "full", "scratch")) and row["budget_s"] > 0
        assert row["scratch_run"]["stop_reason"] and row["examples_seen"]["scratch"] > 0
        assert set(row["time_s"]) == {"feature_extraction", "full", "scratch"}
    assert set(results["ft_vs_fe"]) == {"full", "partial", "layerwise", "lora"}
    assert set(results["fe_vs_expert"]) == {"digits", "reviews"}
    for key in ("ft_vs_fe", "fe_vs_expert"):
        assert all(math.isfinite(v) and v > 0 for v in results[key].values()), key
    expert = results["details"]["fe_vs_expert"]["digits"]["expert"]
    assert 0 <= expert["accuracy"] <= 1 and expert["C"] > 0
    assert set(results["ft_mfu"]) == {"vit_b16", "bert_base"}
    assert all(math.isfinite(v) and v > 0 for v in results["ft_mfu"].values())
    assert results["peak_memory_mb"] is None and results["null_reasons"]["peak_memory_mb"]
    fe = results["details"]["fe"]
    assert fe["studio_cold_s"] > 0 and len(fe["plain_pass_s"]) == 2 and fe["naive_extrapolated"]
    audio = results["details"]["audio"]
    assert audio["studio_cold_s"] > 0 and len(audio["plain_pass_s"]) == 2 and audio["clips"] == 12
    assert 0 <= results["audio_example_fe_accuracy"] <= 1
    for key in bench.GOALS:
        assert f"| `{key}` |" in stdout, f"{key} missing from the printed table"


@pytest.mark.slow  # reads the smoke run above
def test_the_check_catches_missing_and_broken_values(smoke):
    results, _ = smoke
    broken = json.loads(json.dumps(results))
    broken["fe_vs_inference_ratio"] = float("nan")
    del broken["demo_to_model_s"]
    broken["transfer_vs_scratch"]["per_class"]["2"]["scratch"] = None
    broken["ft_mfu"] = None  # null without a reason
    del broken["ft_vs_fe"]["lora"]
    broken["fe_vs_expert"]["digits"] = None
    problems = "\n".join(bench.check(broken))
    for key in ("fe_vs_inference_ratio", "demo_to_model_s", "transfer_vs_scratch[2][scratch]", "ft_mfu",
                "ft_vs_fe has", "fe_vs_expert[digits]"):
        assert key in problems


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the GPU keys are measured")
def test_gpu_keys_are_null_with_a_reason_without_a_gpu(tmp_path):
    class Ctx:
        device = torch.device("cpu")
    results = {"null_reasons": {}, "details": {}}
    bench.section_gpu(Ctx(), results)
    assert results["ft_mfu"] is None and results["peak_memory_mb"] is None
    assert "CUDA" in results["null_reasons"]["ft_mfu"]


def test_goals_are_judged_in_the_right_direction():
    judged = bench.goals({"fe_vs_inference_ratio": 1.2, "ft_vs_plain_loop_ratio": 0.97,
                          "ft_mfu": {"vit_b16": 0.45, "bert_base": 0.3}, "fe_vs_expert": {"a": 0.99, "b": 1.1},
                          "ft_vs_fe": {"full": 1.02, "lora": 0.97}})
    assert judged["fe_vs_inference_ratio"]["met"] is False
    assert judged["ft_vs_plain_loop_ratio"]["met"] is True
    assert judged["ft_mfu"]["met"] is False  # every model must reach the goal
    assert judged["fe_vs_expert"]["met"] is True and judged["ft_vs_fe"]["met"] is False
