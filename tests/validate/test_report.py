"""validate/report.py: the markdown page, the plot and the row notes."""

from __future__ import annotations

import pytest

from vramplan.validate.report import fmt_interval, fmt_pct, load_row_notes, markdown, plot_title, write_plot
from vramplan.validate.runner import default_data_path, file_sha256, load_rows, run_validation

GIB = 2**30


@pytest.fixture(scope="module")
def results():
    return run_validation(default_data_path())


def test_fmt_interval_prints_a_point_or_a_range_in_gib():
    assert fmt_interval(GIB, GIB) == "1.00"
    assert fmt_interval(GIB, 2 * GIB) == "1.00–2.00"
    assert fmt_interval(None, None) == "-"


def test_fmt_pct_signs_only_when_asked():
    assert fmt_pct(0.0312, signed=True) == "+3.1%"
    assert fmt_pct(0.0312) == "3.1%"
    assert fmt_pct(None) == "-"


def test_markdown_lists_every_row_with_its_error_and_note(results):
    path = default_data_path()
    notes = {results[0].id: "a one-line | explanation"}
    text = markdown(results, data={"path": str(path), "sha256": file_sha256(path)}, version="0.0", notes=notes)
    for r in results:
        assert f"`{r.id}`" in text
    assert "a one-line \\| explanation" in text
    assert "TODO" not in text and "FIXME" not in text


def test_row_notes_name_public_rows_with_one_line_each():
    ids = {r["id"] for r in load_rows(default_data_path())}
    for row_id, note in load_row_notes().items():
        assert row_id in ids
        assert note.strip() and "\n" not in note


def test_plot_title_states_n_and_median_error(results):
    title = plot_title(results)
    assert f"n={len(results)}" in title and "median |err| inference" in title


def test_write_plot_renders_a_non_blank_png(results, tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    path = tmp_path / "p.png"
    write_plot(results, path)
    img = plt.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0.01
