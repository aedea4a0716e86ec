"""The layers of the package point down only (and reading mail needs no database), and the check
that says so can fail.

import-linter's contract is in pyproject.toml ([tool.importlinter]); scripts/test runs it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under `root`, with the contract of pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(REPO / "intake", root / "intake", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_engine_module_importing_the_code_of_conduct_layer_breaks_the_contract(
    tmp_path: Path,
) -> None:
    root = copy_of_the_package(tmp_path)
    pipeline = root / "intake" / "engine" / "pipeline.py"
    source = pipeline.read_text(encoding="utf-8")
    marker = "from __future__ import annotations\n"
    pipeline.write_text(
        source.replace(marker, marker + "\nimport intake.conduct.kinds\n", 1), encoding="utf-8"
    )

    result = lint_imports(root)

    assert result.returncode != 0
    assert "intake.engine is not allowed to import intake.conduct" in result.stdout
    assert "intake.engine.pipeline -> intake.conduct.kinds" in result.stdout
