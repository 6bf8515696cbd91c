"""BENCHMARKS.md sections: each bench replaces only its own section."""

import pytest

from evals.bench.report_md import write_section


def test_replace_own_section_and_append_new(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## A (a.py)\n\nold a\n\n## B (b.py)\n\nb stays\n")
    write_section("## A (a.py)\n\nnew a\n", md)
    write_section("## C (c.py)\n\nc\n", md)
    assert md.read_text() == "# Benchmarks\n\n## A (a.py)\n\nnew a\n\n## B (b.py)\n\nb stays\n\n## C (c.py)\n\nc\n"
    write_section("## C (c.py)\n\nc2", md)  # last section, replaced in place
    assert md.read_text().endswith("## B (b.py)\n\nb stays\n\n## C (c.py)\n\nc2\n")
    assert not list(tmp_path.glob(".*.tmp"))


def test_section_needs_a_heading(tmp_path):
    with pytest.raises(ValueError):
        write_section("no heading", tmp_path / "B.md")
