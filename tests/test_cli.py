"""The real `vramplan` command: exit codes, JSON contract, errors without tracebacks, batch mode, start-up time."""

import json
import resource
import subprocess
import sys

import pytest

VRAMPLAN = [sys.executable, "-m", "vramplan"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*VRAMPLAN, *args], capture_output=True, text=True, input=stdin, timeout=60)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("vramplan ")


def test_help_has_examples():
    r = run("estimate", "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "--batch-size" in r.stdout


def test_estimate_json_is_the_contract_object_only():
    r = run("estimate", "llama-2-7b", "--weights", "int8", "--gpu", "RTX-3090", "--json")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    assert est["scenario"]["weights"] == "int8" and est["devices"][0]["gpu"] == "RTX-3090"
    assert sum(t["bytes"] for t in est["breakdown"]) == est["peak"]["device_bytes"]


def test_estimate_table_shows_gib_fit_and_a_speed_line():
    r = run("estimate", "llama-2-7b")
    assert r.returncode == 0 and "GiB" in r.stdout and "fits: yes" in r.stdout
    assert "speed: decode" in r.stdout and "tokens/s" in r.stdout


def test_does_not_fit_exits_1():
    assert run("estimate", "llama-2-70b", "--gpu", "RTX-4090", "--json").returncode == 1


@pytest.mark.parametrize("args,field", [(("--batch-size", "-1"), "batch_size"), (("--weights", "int3"), "weights"),
                                        (("--kv-cache", "fp6"), "kv_cache"), (("--gpu", "RTX-9999"), "gpu"),
                                        (("--engine", "foo"), "engine"), (("--gpus", "-1"), "gpus"),
                                        (("--gpus", "A100-80GB,"), "gpus"), (("--gpus", ","), "gpus"),
                                        (("--lora", "{bad"), "lora"), (("--parallel", "{bad"), "parallel"),
                                        (("--tp", "3", "--gpus", "4"), "parallel.tp"),
                                        (("--task", "training", "--method", "lora", "--lora-rank", "x"), "lora.rank"),
                                        (("--task", "training", "--method", "lora", "--lora-targets", "nosuch"),
                                         "lora.targets")])
def test_bad_input_exits_2_with_field_and_no_traceback(args, field):
    r = run("estimate", "llama-2-7b", *args)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {field}") and "Traceback" not in r.stderr


def test_unknown_model_exits_3():
    r = run("estimate", "no-such-model")
    assert r.returncode == 3 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_missing_config_fields_exit_3(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    r = run("estimate", str(tmp_path))
    assert r.returncode == 3 and "lacks" in r.stderr and "num_layers" in r.stderr


@pytest.mark.parametrize("name,text", [("s.json", "{not json"), ("s.yaml", "model: [unclosed"),
                                       ("s.json", json.dumps({"model": "llama-2-7b", "batch_sise": 2}))])
def test_bad_scenario_files_exit_2(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    r = run("estimate", "--scenario", str(p))
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["estimate", "speed"])
@pytest.mark.parametrize("kind", ["binary", "directory", "missing"])
def test_unreadable_scenario_file_exits_2_naming_the_scenario_field(tmp_path, command, kind):
    p = tmp_path / "s.json"
    if kind == "binary":
        p.write_bytes(b"\x00\x01\xff\xfe")
    elif kind == "directory":
        p.mkdir()
    r = run(command, "--scenario", str(p))
    assert r.returncode == 2 and r.stderr.startswith("error: scenario: cannot read") and "Traceback" not in r.stderr


def test_yaml_scenario_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("model: qwen2.5-7b-instruct\nprompt_tokens: 30720\nnew_tokens: 2048\n")
    r = run("estimate", "--scenario", str(p), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["scenario"]["prompt_tokens"] == 30720


def test_jsonl_batch_keeps_order_and_reports_bad_lines(tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_text("\n".join([json.dumps({"model": "llama-2-7b"}), json.dumps({"model": "llama-2-7b",
                                                                             "batch_size": 0}),
                            "{broken", json.dumps({"model": "qwen2.5-0.5b"})]) + "\n")
    r = run("estimate", "--scenario", str(p), "--json")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 1 and len(lines) == 4
    assert lines[0]["model"]["name"] == "llama-2-7b" and lines[3]["model"]["name"] == "qwen2.5-0.5b"
    assert lines[1]["error"]["field"] == "batch_size" and lines[1]["line"] == 2
    assert lines[2]["error"]["field"] == "scenario"


def test_models_and_gpus_list():
    models = json.loads(run("models", "--json").stdout)
    assert any(m["name"] == "llama-2-7b" and m["params"] == 6738415616 for m in models)
    gpus = json.loads(run("gpus", "--json").stdout)
    assert any(g["name"] == "RTX-4090" for g in gpus)


def test_estimate_json_process_time_is_small():
    """Start-up budget: 0.3 s of process time on the dev machine; CI boxes get 3× slack."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(["vramplan", "estimate", "llama-2-7b", "--json"], capture_output=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert r.returncode == 0
    assert cpu < 0.9
