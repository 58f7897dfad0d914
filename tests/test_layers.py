"""Dependencies point one way (``cli`` -> ``projections`` -> ``ledger``) with no import
cycle, function-level imports included: the contracts in ``pyproject.toml``, checked by
``lint-imports`` here as in CI, and every function-level import of a project module says
what it saves at start-up (docs/architecture.md, "Dependencies")."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "projections", "cli")


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the packages under ``where``, with its contracts, no cache."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(no_cache=True))"
    )
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_a_function_level_cycle_breaks_the_contracts(tmp_path: Path) -> None:
    """The contracts see imports inside functions: the cycle the policy once hid that way
    (``ledger.domain.policy`` -> ``ledger.application``) breaks them again."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    policy = tmp_path / "ledger" / "domain" / "policy.py"
    policy.write_text(
        policy.read_text(encoding="utf-8")
        + "\n\ndef _cycle() -> object:\n    from ledger.application import CaseLedger\n\n"
        "    return CaseLedger\n",
        encoding="utf-8",
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ledger.domain is not allowed to import ledger.application" in result.stdout
    assert "ledger.domain.policy -> ledger.application" in result.stdout


def test_the_index_recorders_sit_below_the_index(tmp_path: Path) -> None:
    """The cycle the index once had (its PostgreSQL recorder built on ``case_index``'s row
    types) breaks the index's layers and the no-cycle contract again: the row types live
    in ``projections.index.rows``, below both recorders."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    recorder = tmp_path / "projections" / "index" / "postgres.py"
    recorder.write_text(
        recorder.read_text(encoding="utf-8")
        + "\n\nfrom projections.index.case_index import CaseIndex  # noqa: E402\n",
        encoding="utf-8",
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "No cycles are allowed in projections.index." in out
    assert "projections.index.postgres is not allowed to import projections.index.case_index" in out


def _function_level_project_imports(path: Path) -> list[tuple[int, int]]:
    """(first line of its group of consecutive imports, its line) of each import of a
    project module inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, int]] = []
    group_start: dict[int, int] = {}  # an import's last line -> where its group begins

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                first = group_start.get(child.lineno - 1, child.lineno)
                group_start[child.end_lineno or child.lineno] = first
                if isinstance(child, ast.ImportFrom):
                    names = [child.module or ""]
                    relative = child.level > 0
                else:
                    names = [alias.name for alias in child.names]
                    relative = False
                if relative or any(name.split(".")[0] in PACKAGES for name in names):
                    found.append((first, child.lineno))
            walk(child, inside)

    walk(tree, False)
    return found


def test_every_function_level_import_says_what_it_saves() -> None:
    """No function-level import of ``ledger``, ``projections`` or ``cli`` without a
    ``# lazy: ... ms`` comment just above its group naming the start-up cost it saves."""
    missing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").split("\n")
            for first, line in _function_level_project_imports(path):
                comment: list[str] = []
                at = first - 2
                while at >= 0 and lines[at].lstrip().startswith("#"):
                    comment.insert(0, lines[at].strip())
                    at -= 1
                text = " ".join(comment)
                if "lazy:" not in text or " ms" not in text:
                    missing.append(f"{path.relative_to(ROOT)}:{line}")
    assert not missing, f"function-level imports without a '# lazy: ... ms' comment: {missing}"


#: Past this many lines a module must say at its top why it is one module.
LONG_MODULE = 600


def test_no_long_module_without_its_reason() -> None:
    """Issue 14: no module over about 600 lines without a reason written at its top (a
    paragraph of its docstring starting "Why one module:")."""
    unexplained = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines <= LONG_MODULE:
                continue
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            if "\nWhy one module:" not in f"\n{docstring}":
                unexplained.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not unexplained, unexplained
