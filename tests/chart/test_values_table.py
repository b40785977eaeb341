"""The values table in the chart README is generated from values.yaml and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("values_table", ROOT / "scripts" / "values-table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_current():
    script = load_script()
    readme = (ROOT / "charts/pidone/README.md").read_text()
    assert script.BEGIN in readme and script.END in readme
    assert script.readme_with_table(readme) == readme, (
        "charts/pidone/README.md's values table is out of date: run scripts/values-table.py --write")


def test_every_value_has_a_row():
    script = load_script()
    values = yaml.safe_load((ROOT / "charts/pidone/values.yaml").read_text())
    table = script.table()

    def leaves(node, path=""):
        if isinstance(node, dict) and node:
            for key, child in node.items():
                yield from leaves(child, f"{path}.{key}" if path else key)
        else:
            yield path

    for path in leaves(values):
        assert f"| `{path}` |" in table, f"{path} has no row"


def test_descriptions_come_from_the_comments():
    script = load_script()
    text = "a:\n  # -- First line\n  # second line.\n  b: 1\n  # plain comment\n  c: []\n# -- Top.\nd: {}\n"
    described = script.descriptions(text)
    assert described == {"a.b": "First line second line.", "d": "Top."}
    rows = script.rows(yaml.safe_load(text), described)
    assert rows == [("a.b", "int", "1", "First line second line."), ("a.c", "list", "[]", ""),
                    ("d", "object", "{}", "Top.")]
