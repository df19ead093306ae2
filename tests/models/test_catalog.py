"""The shipped catalog: schema, provenance, lookups, and exact parameter counts against published totals."""

import pytest

from vramplan.errors import ModelNotFoundError
from vramplan.models import catalog
from vramplan.models.resolve import resolve_model

ENTRIES = list(catalog.entries().values())
PUBLISHED = [e for e in ENTRIES if e.params]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_has_provenance_and_builds(entry):
    assert entry.hf_id and "/" in entry.hf_id
    assert entry.source.get("config"), "every entry names where its config came from"
    spec = entry.spec()
    assert spec.params > 0 and 0 < spec.active_params <= spec.params


@pytest.mark.parametrize("entry", PUBLISHED, ids=lambda e: e.name)
def test_param_count_matches_published_total_exactly(entry):
    """`params` in the catalog is a published figure with its source; the spec recomputes it from shapes."""
    assert entry.source.get("params"), "a published count names its source"
    spec = entry.spec()
    expected = entry.params
    if entry.params_include_tied_lm_head:
        expected -= spec.vocab_size * spec.hidden_size  # the file stores the tied lm_head a second time
    assert spec.params == expected


def test_lookup_by_name_alias_and_hf_id_case_insensitive():
    a = catalog.find("llama-2-7b")
    assert catalog.find("META-LLAMA/llama-2-7b-hf") is a
    assert a is not None and a.hf_id == "meta-llama/Llama-2-7b-hf"
    assert catalog.find("huggyllama/llama-30b") is catalog.find("llama-33b")


def test_unknown_model_says_where_it_looked():
    with pytest.raises(ModelNotFoundError, match="catalog") as e:
        resolve_model("meta-llama/Llama-9-1b")
    assert "hub (not asked" in str(e.value)


def test_seed_000_llama_dims_table():
    """Seed 000 table (LLaMA paper Table 2): params 6.7/13/32.5/65.2 B; n_layers, n_heads, dim."""
    table = {"llama-7b": (6.7, 32, 32, 4096), "llama-13b": (13.0, 40, 40, 5120), "llama-30b": (32.5, 60, 52, 6656),
             "llama-65b": (65.2, 80, 64, 8192)}
    for name, (billions, layers, heads, dim) in table.items():
        s = catalog.find(name).spec()
        assert (s.num_layers, s.num_heads, s.hidden_size) == (layers, heads, dim)
        assert s.params / 1e9 == pytest.approx(billions, abs=0.1)  # the paper prints one decimal


def test_moe_and_mla_entries_have_fewer_active_params():
    for name in ("mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3", "gpt-oss-20b"):
        s = catalog.find(name).spec()
        assert s.active_params < s.params / 2
