"""measure/plan.py: job validation, what gets built, and row assembly, all without torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.errors import ModelNotFoundError, ScenarioError
from vramplan.measure.plan import DEFAULT_TRAINING_STEPS, MeasurePlan, build_rows, load_jobs, plan_job
from vramplan.models import catalog
from vramplan.validate.runner import measured_interval, score_row

BATCH = Path(__file__).resolve().parents[2] / "benchmarks" / "measure_batch.jsonl"
ENV = {"gpu": "H100-SXM", "gpu_name": "NVIDIA H100 80GB HBM3", "torch": "2.5.1", "transformers": "4.46.0"}


def _job(**scenario) -> dict:
    return {"id": "t", "scenario": {"model": "qwen2.5-0.5b", **scenario}}


def test_plan_takes_the_config_from_the_catalog_entry():
    plan = plan_job(_job())
    assert plan.config == catalog.find("qwen2.5-0.5b").config
    assert plan.config_source.startswith("catalog:qwen2.5-0.5b")


def test_plan_reads_a_local_config_json(tmp_path):
    cfg = dict(catalog.find("qwen2.5-0.5b").config)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    plan = plan_job(_job(model=str(tmp_path)))
    assert plan.config == cfg and plan.config_source == f"local:{tmp_path / 'config.json'}"


def test_plan_rejects_an_unknown_model():
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        plan_job(_job(model="no-such-model"))


def test_plan_fills_weights_from_the_checkpoint_dtype_and_attention_default():
    plan = plan_job(_job())
    assert plan.scenario["weights"] == "bf16" and plan.torch_dtype == "bfloat16"
    assert plan.attn_implementation == "sdpa" and plan.quantization is None and plan.steps == 1


def test_plan_reports_every_field_it_cannot_measure_together():
    with pytest.raises(ScenarioError) as err:
        plan_job(_job(engine="vllm", weights="gptq-int4", gpus=2))
    assert {e.field for e in err.value.errors} == {"engine", "weights", "gpus"}


def test_plan_rejects_a_malformed_job():
    with pytest.raises(ScenarioError, match="scenario"):
        plan_job({"scenario": {"model": "qwen2.5-0.5b"}})


def test_nf4_double_quant_maps_to_bitsandbytes_kwargs():
    plan = plan_job(_job(weights="nf4-dq", compute_dtype="fp16"))
    assert plan.quantization == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                                 "bnb_4bit_compute_dtype": "float16"}


def test_mixed_precision_full_training_keeps_fp32_parameters_under_autocast():
    plan = plan_job(_job(task="training", precision="bf16-mixed"))
    assert (plan.torch_dtype, plan.autocast_dtype) == ("float32", "bfloat16")
    assert plan.steps == DEFAULT_TRAINING_STEPS


def test_bf16_true_training_has_bf16_parameters_and_no_autocast():
    plan = plan_job(_job(task="training", precision="bf16-true"))
    assert (plan.torch_dtype, plan.autocast_dtype) == ("bfloat16", None)


def test_plan_round_trips_through_json():
    plan = plan_job(_job(task="training", method="lora"))
    assert MeasurePlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_build_rows_writes_one_scorable_row_per_metric_with_provenance():
    plan = plan_job(_job(prompt_tokens=128, new_tokens=64))
    figures = {"allocated_bytes": 1_500_000_000, "reserved_bytes": 1_600_000_000, "device_bytes": 2_100_000_000}
    rows = build_rows(plan, figures, ENV)
    assert [r["measured"]["metric"] for r in rows] == ["allocated", "reserved", "device"]
    for r in rows:
        metric = r["measured"]["metric"]
        assert measured_interval(r["measured"]) == (figures[f"{metric}_bytes"],) * 2
        assert r["scenario"]["gpu"] == "H100-SXM" and r["provenance"]["tool"] == "vramplan measure"
        assert not score_row(r, "vramplan measure").failed


def test_build_rows_skips_a_metric_nvml_could_not_attribute():
    rows = build_rows(plan_job(_job()), {"allocated_bytes": 1, "reserved_bytes": 2, "device_bytes": None}, ENV)
    assert [r["measured"]["metric"] for r in rows] == ["allocated", "reserved"]


def test_measure_batch_has_at_least_twenty_plannable_jobs_with_unique_ids():
    jobs = load_jobs(BATCH)
    plans = [plan_job(j) for j in jobs]
    assert len(plans) >= 20 and len({p.id for p in plans}) == len(plans)
    assert {p.scenario["task"] for p in plans} == {"inference", "training"}


def test_a_bare_scenario_file_is_one_job(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"model": "qwen2.5-0.5b", "prompt_tokens": 64}')
    (job,) = load_jobs(path)
    plan = plan_job(job)
    assert job["id"] == "scenario-1" and plan.scenario["prompt_tokens"] == 64
