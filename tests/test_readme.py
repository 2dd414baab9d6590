"""The README's Python examples: those that use the emulator run as written; the ones that
need a real SFMC account at least compile and import what they name."""

import ast
import importlib
import re
from pathlib import Path

BLOCKS = re.findall(
    r"```python\n(.*?)```", (Path(__file__).parents[1] / "README.md").read_text(), re.S
)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2


def test_emulator_examples_run() -> None:
    runnable = [block for block in BLOCKS if "Emulator(" in block]
    assert runnable
    for block in runnable:
        exec(compile(block, "README.md", "exec"), {})


def test_other_examples_import_what_they_name() -> None:
    for block in BLOCKS:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
