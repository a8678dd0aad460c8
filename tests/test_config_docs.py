"""The README's config-key tables are the declared tables, not a copy that could drift."""

from pathlib import Path

from fe2x.config.docs import BLOCKS, check_readme

README = Path(__file__).parents[1] / "README.md"


def test_readme_tables_are_rendered_from_the_declarations():
    text = README.read_text()
    missing = [name for name in BLOCKS if f"<!-- config:{name} -->" not in text]
    assert not missing, f"README lacks the config blocks {missing}"
    stale = check_readme(README)
    assert not stale, f"run `python -m fe2x.config.docs README.md`: {stale} differ"
