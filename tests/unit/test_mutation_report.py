"""`make mutation`'s verdict per module (benchmarks/mutation.py): score and equivalents."""

import pytest

from benchmarks.mutation import collect, load_equivalents, parse, report

RESULTS = """\
    nodes.bitmap.x_union__mutmut_1: killed
    nodes.bitmap.x_union__mutmut_2: timeout
    nodes.bitmap.x_union__mutmut_3: survived
    nodes.bitmap.xǁBitmapǁtruncate__mutmut_4: no tests
""" + "".join(f"    nodes.bitmap.x_zero_runs__mutmut_{i}: killed\n" for i in range(1, 37))


def write(folder, module, body):
    (folder / f"{module}.toml").write_text(body, encoding="utf-8")


def entry(name, reason="no input tells it apart"):
    return f'[[mutant]]\nname = "{name}"\nreason = "{reason}"\n\n'


def test_a_module_passes_only_when_every_survivor_is_named_equivalent(tmp_path):
    table = parse(RESULTS)
    write(tmp_path, "nodes.bitmap", entry("nodes.bitmap.x_union__mutmut_3"))
    (result,) = collect(table, load_equivalents(tmp_path))
    assert (result.total, result.caught) == (40, 38)
    assert result.unexplained == ["nodes.bitmap.xǁBitmapǁtruncate__mutmut_4"]
    assert not result.passed
    write(tmp_path, "nodes.bitmap", entry("nodes.bitmap.x_union__mutmut_3")
          + entry("nodes.bitmap.xǁBitmapǁtruncate__mutmut_4"))
    (result,) = collect(table, load_equivalents(tmp_path))
    assert result.passed and result.score == 38 / 40
    md, data = report([result])
    assert "| nodes.bitmap | 40 | 37 | 1 | 2 | 2 | 95% | pass |" in md
    assert "Unexplained" not in md and "Stale" not in md


def test_equivalents_do_not_lift_a_score_below_90_percent(tmp_path):
    table = parse("\n".join(RESULTS.splitlines()[:4]))  # 2 caught of 4
    write(tmp_path, "nodes.bitmap", entry("nodes.bitmap.x_union__mutmut_3")
          + entry("nodes.bitmap.xǁBitmapǁtruncate__mutmut_4"))
    (result,) = collect(table, load_equivalents(tmp_path))
    assert result.unexplained == [] and result.score == 0.5 and not result.passed
    assert "| 50% | FAIL |" in report([result])[0]


def test_an_equivalent_that_no_longer_survives_is_reported_stale(tmp_path):
    write(tmp_path, "nodes.bitmap", entry("nodes.bitmap.x_union__mutmut_1")
          + entry("nodes.bitmap.x_union__mutmut_3") + entry("nodes.bitmap.x_union__mutmut_99")
          + entry("nodes.bitmap.xǁBitmapǁtruncate__mutmut_4"))
    (result,) = collect(parse(RESULTS), load_equivalents(tmp_path))
    assert result.stale == ["nodes.bitmap.x_union__mutmut_1", "nodes.bitmap.x_union__mutmut_99"]
    assert result.passed  # stale entries are flagged, they do not fail the module
    md, data = report([result])
    assert "## Stale equivalents" in md and "- `nodes.bitmap.x_union__mutmut_99`" in md
    assert data["modules"][0]["stale"] == result.stale


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (entry("nodes.metrics.x_f__mutmut_1"), "is not a mutant of nodes.bitmap"),
        (entry("nodes.bitmap.x_f__mutmut_1", " "), "nodes.bitmap.x_f__mutmut_1 has no reason"),
        (entry("nodes.bitmap.x_f__mutmut_1") * 2, "nodes.bitmap.x_f__mutmut_1 is listed twice"),
        ('[[mutant]]\nname = "nodes.bitmap.x_f__mutmut_1"\n', "missing required field `reason`"),
        ("[[mutant]\n", "not TOML"),
    ],
)
def test_a_malformed_equivalents_file_is_a_one_line_error(tmp_path, body, message):
    write(tmp_path, "nodes.bitmap", body)
    with pytest.raises(ValueError, match="nodes.bitmap.toml: ") as caught:
        load_equivalents(tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_equivalents_in_the_repository_are_well_formed():
    from benchmarks.mutation import EQUIVALENTS

    listed = load_equivalents(EQUIVALENTS)
    assert listed and all(reasons for reasons in listed.values())


def test_a_run_that_stopped_early_fails_without_calling_the_rest_survivors(tmp_path):
    table = parse(RESULTS + "    nodes.bitmap.x_union__mutmut_4: not checked\n")
    write(tmp_path, "nodes.bitmap", entry("nodes.bitmap.x_union__mutmut_3")
          + entry("nodes.bitmap.xǁBitmapǁtruncate__mutmut_4"))
    (result,) = collect(table, load_equivalents(tmp_path))
    assert result.unexplained == [] and result.unchecked == 1 and not result.passed
    assert "| FAIL (1 not checked) |" in report([result])[0]
