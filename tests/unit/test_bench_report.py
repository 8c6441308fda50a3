"""docs/benchmarks.md: recording one benchmark replaces its own section and leaves the others."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from services.bench.report import HEADER, write_section
from services.settings import Settings

SETTINGS = Settings(pg_password=SecretStr("pw"))


def test_a_new_document_gets_the_header_and_the_section_with_what_it_depends_on(
    tmp_path: Path,
) -> None:
    document = tmp_path / "benchmarks.md"

    write_section("engine", "otc bench engine", ["ratio 3.0x"], SETTINGS, document)

    text = document.read_text()
    assert text.startswith(HEADER)
    assert "`otc bench engine`" in text
    assert "ratio 3.0x" in text
    assert "- machine: " in text
    assert "- commit: " in text
    assert "engine_batch_size=500" in text


def test_recording_again_replaces_only_that_section(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    write_section("engine", "otc bench engine", ["ratio 3.0x"], SETTINGS, document)
    write_section("api", "otc bench api", ["12 orders/s"], SETTINGS, document)

    write_section("engine", "otc bench engine", ["ratio 4.0x"], SETTINGS, document)

    text = document.read_text()
    assert "ratio 4.0x" in text
    assert "ratio 3.0x" not in text
    assert "12 orders/s" in text
    assert text.count("<!-- bench:engine -->") == 1
