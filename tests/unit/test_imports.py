"""What the product imports, seen from a fresh interpreter: the CLI loads no test
library and no cloud SDK (a provider's SDK is imported only when that provider is
used), and no module of burst or burst_providers imports a test library at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TEST_LIBRARIES = ("pytest", "_pytest", "moto", "flask", "werkzeug", "hypothesis", "stands")
CLOUD_SDKS = ("boto3", "botocore", "aliyunsdkcore", "aliyunsdkecs")

CLI = """
import json, sys
import burst.cli
for argv in (["burst", "--help"], ["burst", "demo", "--help"], ["burst", "up", "--help"]):
    sys.argv = argv
    try:
        burst.cli.main()
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
print("MODULES=" + json.dumps(sorted(sys.modules)))
"""

EVERY_MODULE = """
import importlib, json, pkgutil, sys
import burst, burst_providers
skipped = ("burst.__main__", "burst.store.migrations")  # the command itself; alembic's scripts
names = [m.name for pkg in (burst, burst_providers)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
         if not m.name.startswith(skipped)]
for name in names:
    importlib.import_module(name)
print("MODULES=" + json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


def fresh_interpreter(code: str, tmp_path):
    """Run `code` in a new Python (outside tests/, so nothing of the tests is on its
    path) and return what it printed after MODULES=."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, "COLUMNS": "100"},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("MODULES="))
    return json.loads(line.removeprefix("MODULES="))


def top_level(modules) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_the_cli_and_its_help_load_no_test_library_and_no_cloud_sdk(tmp_path):
    loaded = top_level(fresh_interpreter(CLI, tmp_path))
    assert "burst" in loaded and "typer" in loaded  # the probe did import the CLI
    assert not loaded & set(TEST_LIBRARIES), sorted(loaded & set(TEST_LIBRARIES))
    assert not loaded & set(CLOUD_SDKS), sorted(loaded & set(CLOUD_SDKS))


@pytest.mark.timeout(300)
def test_no_module_of_the_product_imports_a_test_library(tmp_path):
    found = fresh_interpreter(EVERY_MODULE, tmp_path)
    imported = set(found["imported"])
    assert {"burst.lab.lab", "burst.cli.demo", "burst_providers.fake", "burst_providers.aws"} <= imported
    assert not [name for name in imported if name.startswith("burst.testing")]  # no test machinery in the package
    loaded = top_level(found["loaded"])
    assert not loaded & set(TEST_LIBRARIES), sorted(loaded & set(TEST_LIBRARIES))


def test_no_product_file_names_a_test_library_in_any_import_even_a_lazy_one():
    """The same, read from the source: imports inside functions count too."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = [*sorted((root / "burst").rglob("*.py")), *sorted((root / "providers").rglob("*.py"))]
    assert len(files) > 50 and root / "burst" / "lab" / "lab.py" in files
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in TEST_LIBRARIES]
    assert offenders == []
