"""Calibration: the fit recovers known laws, the packaged table is complete and cites its rows."""

from __future__ import annotations

import pytest

from vramplan.hardware.gpus import get_gpu
from vramplan.speed import calibration as cal


def test_fit_affine_recovers_exact_law():
    eta, t0 = 0.8, 0.002
    pts = [(x, x / eta + t0) for x in (0.001, 0.004, 0.01, 0.05)]
    law = cal.fit_affine(pts, with_t0=True)
    assert law.eta == pytest.approx(eta)
    assert law.t0_s == pytest.approx(t0)


def test_fit_affine_keeps_eta_at_most_one_and_t0_non_negative():
    law = cal.fit_affine([(1.0, 0.5), (2.0, 0.9), (3.0, 1.2)], with_t0=True)
    assert law.eta <= 1.0
    assert law.t0_s >= 0.0


def test_fit_without_floor_is_a_pure_ratio():
    law = cal.fit_affine([(1.0, 2.0), (2.0, 4.0)], with_t0=False)
    assert law.eta == pytest.approx(0.5)
    assert law.t0_s == 0.0


def test_fit_needs_more_than_one_row():
    with pytest.raises(ValueError, match="two rows"):
        cal.fit_affine([(1.0, 2.0)], with_t0=True)


def test_every_packaged_class_has_enough_rows_and_a_residual_band():
    data = cal.calibration()
    for section in ("decode", "prefill"):
        for key, f in data[section].items():
            assert f["n"] == len(f["rows"]) >= data["provenance"]["min_rows"], key
            assert 0 < f["eta"] <= 1 and f["t0_s"] >= 0, key
            assert f["loo_ratio_p10"] <= 1.0 <= f["loo_ratio_p90"] or f["n"] < 10, key


def test_every_engine_has_a_family_and_every_device_a_pool():
    data = cal.calibration()
    from vramplan.scenario import ENGINES

    assert set(data["families"]) == set(ENGINES)
    for dev in ("cuda", "metal", "metal-max", "metal-ultra", "cpu", "vulkan"):
        assert f"*/{dev}" in data["decode"]


DEVICES = [("RTX-4090", "cuda"), ("M2-Max", "metal-max"), ("M1-Pro", "metal"), ("M2-Ultra", "metal-ultra"),
           ("cpu:M1-Pro", "cpu"), ("RX-7900-XTX", "vulkan")]


@pytest.mark.parametrize(("gpu", "dev"), DEVICES)
def test_device_class(gpu, dev):
    assert cal.device_class(get_gpu(gpu)) == dev


def test_lookup_falls_back_to_device_pool():
    fit, exact = cal.lookup("decode", "transformers/cuda")
    assert fit.key == "*/cuda" and not exact


def test_class_key_picks_the_era_class_only_before_the_boundary():
    before = cal.calibration()["eras"]["llama.cpp/metal-max"]["before"]
    assert cal.class_key("llama.cpp", "metal-max", None) == "llama.cpp/metal-max"
    assert cal.class_key("llama.cpp", "metal-max", before) == "llama.cpp/metal-max"
    assert cal.class_key("llama.cpp", "metal-max", "2023-06") == f"llama.cpp/metal-max@pre-{before}"
    assert cal.class_key("llama.cpp", "cuda", "2023-06") == "llama.cpp/cuda"  # no era split for CUDA


def test_era_classes_are_fitted_on_their_own_rows_only_and_never_on_seed_rows():
    data = cal.calibration()
    early = data["decode"]["llama.cpp/metal-max@pre-2023-08"]
    assert early["rows"] == data["eras"]["llama.cpp/metal-max"]["rows"]["decode"]
    assert not set(early["rows"]) & set(data["decode"]["llama.cpp/metal-max"]["rows"])
    assert not set(early["rows"]) & set(data["decode"]["*/metal-max"]["rows"])
    # speed-pub-145..147: seed 003's M2 Max figures, include_in_roofline_stats=no
    assert not {"speed-pub-145", "speed-pub-146", "speed-pub-147"} & set(early["rows"])


def test_every_era_cites_its_boundary_source():
    for key, era in cal.calibration()["eras"].items():
        assert era["source"] and len(era["before"]) == 7, key


def test_links_come_from_the_interconnect_table():
    assert cal.link(get_gpu("A100-80GB"), "intra").name == "nvlink3"
    assert cal.link(get_gpu("RTX-4090"), "intra").name == "pcie4"
    assert cal.link(get_gpu("H100-SXM"), "inter").bytes_per_s == pytest.approx(400e9 / 8)
