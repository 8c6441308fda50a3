"""docs/asyncapi.json through the AsyncAPI initiative's own parser (@asyncapi/parser on Node.js):
no error, no warning. The parser comes from the npm registry, at the versions the lock file of
tests/asyncapi pins, into .run/asyncapi-parser (once; again only when the lock file changes).
Needs no stack; skipped where Node.js or npm is missing."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from services.asyncapi import DOCUMENT

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "asyncapi"
CACHE = ROOT / ".run" / "asyncapi-parser"


@pytest.fixture(scope="module")
def validate() -> list[str]:
    """The command that validates a document, its file name to be appended."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the AsyncAPI parser needs Node.js and npm")
    lock = hashlib.sha256((SOURCE / "package-lock.json").read_bytes()).hexdigest()
    stamp = CACHE / ".installed"
    if not stamp.is_file() or stamp.read_text() != lock:
        CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SOURCE / name, CACHE / name)
        subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
            [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=CACHE, check=True, timeout=300
        )
        stamp.write_text(lock)
    shutil.copyfile(SOURCE / "validate.mjs", CACHE / "validate.mjs")
    return [node, str(CACHE / "validate.mjs")]


def test_the_committed_document_is_valid_asyncapi(validate: list[str]) -> None:
    result = subprocess.run(  # noqa: S603 - our own script, our own document
        [*validate, str(DOCUMENT)], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parser_refuses_a_document_with_a_dangling_reference(
    validate: list[str], tmp_path: Path
) -> None:
    broken = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    del broken["components"]["schemas"]["CommandEnvelope"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")

    result = subprocess.run(  # noqa: S603 - our own script, a document of the test's
        [*validate, str(path)], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 1
    assert "CommandEnvelope" in result.stdout
