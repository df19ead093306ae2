"""`vramplan checkpoint` end to end (the real command)."""

import json

from conftest import run_cli
from vramplan.models.resolve import resolve_model


def _run(*args):
    return run_cli("checkpoint", *args)


def test_checkpoint_json_has_weights_per_dtype_and_the_training_breakdown():
    p = _run("llama-2-7b", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    params = resolve_model("llama-2-7b").params
    assert out["weights_only"]["bf16"] == params * 2
    names = [t["name"] for t in out["training"]["breakdown"]]
    assert names == ["weights", "master_weights", "optimizer_states"]
    assert out["training"]["total_bytes"] == params * (2 + 4 + 8)


def test_checkpoint_rejects_an_unknown_optimizer_with_exit_2():
    p = _run("llama-2-7b", "--optimizer", "adam9")
    assert p.returncode == 2
    assert "optimizer" in p.stderr
