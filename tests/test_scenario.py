import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import ScenarioError
from vramplan.scenario import KV_CACHE_DTYPES, Scenario


def test_defaults_follow_scenario_md():
    s = Scenario.from_dict({"model": "llama-2-7b"})
    assert (s.task, s.engine, s.gpu, s.gpus, s.batch_size) == ("inference", "transformers", "A100-80GB", 1, 1)
    assert (s.prompt_tokens, s.new_tokens, s.kv_cache, s.seq_len) == (512, 512, "auto", 2048)
    assert (s.method, s.optimizer, s.precision) == ("full", "adamw", "bf16-mixed")
    assert s.lora.rank == 8 and s.lora.alpha == 16 and s.lora.targets == ("q_proj", "v_proj")
    assert s.parallel.strategy == "none" and s.parallel.tp == 1


def test_scenario_rejects_unknown_kv_cache_value():
    with pytest.raises(ScenarioError, match="kv_cache") as e:
        Scenario.from_dict({"model": "x", "kv_cache": "fp6"})
    assert e.value.accepted == list(KV_CACHE_DTYPES)


def test_scenario_rejects_unknown_field_and_lists_fields():
    with pytest.raises(ScenarioError, match="batch_sise") as e:
        Scenario.from_dict({"model": "x", "batch_sise": 2})
    assert "batch_size" in e.value.accepted


@pytest.mark.parametrize("field,value", [("batch_size", -1), ("batch_size", 0), ("prompt_tokens", 0),
                                         ("new_tokens", -5), ("gpus", 0), ("batch_size", "two")])
def test_scenario_rejects_bad_integers(field, value):
    with pytest.raises(ScenarioError, match=field):
        Scenario.from_dict({"model": "x", field: value})


@pytest.mark.parametrize("field", ["batch_size", "prompt_tokens", "seq_len", "samples"])
def test_scenario_rejects_integers_beyond_a_json_number(field):
    with pytest.raises(ScenarioError, match=field):  # 1e300 used to overflow float arithmetic in the estimate
        Scenario.from_dict({"model": "x", field: 1e300})
    with pytest.raises(ScenarioError, match=field):
        Scenario.from_dict({"model": "x", field: 2**53 + 1})


def test_scenario_rejects_more_gpus_than_the_largest_published_cluster():
    from vramplan.scenario import MAX_GPUS

    assert Scenario.from_dict({"model": "x", "gpus": MAX_GPUS}).gpus == MAX_GPUS
    with pytest.raises(ScenarioError, match="gpus"):  # 2**53 GPUs used to exhaust memory building per-device lists
        Scenario.from_dict({"model": "x", "gpus": MAX_GPUS + 1})


def test_scenario_rejects_int3_weights():
    with pytest.raises(ScenarioError, match="weights") as e:
        Scenario.from_dict({"model": "x", "weights": "int3"})
    assert "gguf-Q4_K_M" in e.value.accepted


def test_all_bad_fields_reported_together():
    with pytest.raises(ScenarioError) as e:
        Scenario.from_dict({"model": "x", "batch_size": -1, "kv_cache": "fp6", "engine": "foo"})
    text = str(e.value)
    assert "batch_size" in text and "kv_cache" in text and "engine" in text


def test_model_is_required():
    with pytest.raises(ScenarioError, match="model"):
        Scenario.from_dict({"task": "inference"})


def test_weights_normalized_case_and_group_suffix():
    assert Scenario.from_dict({"model": "x", "weights": "gguf-q4_k_m"}).weights == "gguf-Q4_K_M"
    assert Scenario.from_dict({"model": "x", "weights": "GPTQ-INT4-g64"}).weights == "gptq-int4-g64"


def test_tp_larger_than_gpus_is_rejected():
    with pytest.raises(ScenarioError, match="parallel.tp"):
        Scenario.from_dict({"model": "x", "gpus": 2, "parallel": {"strategy": "none", "tp": 4}})


def test_qlora_with_16bit_weights_is_rejected():
    with pytest.raises(ScenarioError, match="weights"):
        Scenario.from_dict({"model": "x", "task": "training", "method": "qlora", "weights": "bf16"})


@pytest.mark.parametrize("gpus", ["RTX-3090,", "RTX-3090,,RTX-4090", ["RTX-3090", ""]])
def test_scenario_rejects_empty_entries_in_a_gpu_list(gpus):
    with pytest.raises(ScenarioError, match="gpus"):
        Scenario.from_dict({"model": "x", "gpus": gpus})


def test_heterogeneous_gpu_list_counts_devices():
    s = Scenario.from_dict({"model": "x", "gpus": ["RTX-3090", "RTX-3090", "RTX-4090"]})
    assert s.num_devices == 3 and s.gpu_names[2] == "RTX-4090"


def test_to_dict_round_trips():
    s = Scenario.from_dict({"model": "x", "gpus": ["A", "B"], "lora": {"rank": 16, "targets": "all-linear"}})
    assert Scenario.from_dict(s.to_dict()) == s


# Any JSON value in any field: a Scenario or a ScenarioError naming a field, never another exception (no traceback
# can reach a CLI/HTTP user through scenario parsing).
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3), max_leaves=6)
_FIELDS = [f.name for f in dataclasses.fields(Scenario)] + ["unknown_field"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6))
def test_any_json_scenario_parses_or_names_a_bad_field(data):
    try:
        Scenario.from_dict({"model": "x", **data})
    except ScenarioError as e:
        assert e.field and str(e).startswith(e.field.split(".")[0]) or ";" in str(e)
