"""mkdocs hook: `{{ cli_reference }}` in a page becomes Typer's own reference of the `assistant` command.

Made at build time from the app itself (what `typer assistant.cli.app utils docs` prints), in this process, so a
command or option added, renamed or removed shows at the next build, and an app that does not import fails it.
"""

import sys
from pathlib import Path

MARK = "{{ cli_reference }}"
ROOT = Path(__file__).resolve().parents[2]


def reference() -> str:
    """Every command, argument and option of `assistant`, as Markdown (headings from `##` down)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import typer
    from typer.cli import get_docs_for_click

    from assistant.cli import app

    command = typer.main.get_command(app)
    return get_docs_for_click(obj=command, ctx=typer.Context(command), name="assistant", indent=1)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return markdown.replace(MARK, reference()) if MARK in markdown else markdown
