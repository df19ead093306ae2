from vramplan.units import GB, GIB, ceil_div, fmt_gib, parse_size


def test_parse_size_distinguishes_gib_and_gb():
    assert parse_size("24GiB") == 24 * 2**30
    assert parse_size("80GB") == 80 * 10**9
    assert parse_size("16384 MiB") == 16384 * 2**20
    assert parse_size("1.5GiB") == 3 * 2**29


def test_parse_size_rejects_non_sizes():
    assert parse_size("A100") is None
    assert parse_size("24") is None


def test_ceil_div_rounds_up():
    assert ceil_div(7, 2) == 4
    assert ceil_div(8, 2) == 4


def test_fmt_gib_prints_gib_not_gb():
    assert fmt_gib(GIB) == "1.00"
    assert fmt_gib(GB) == f"{10**9 / 2**30:.2f}"
