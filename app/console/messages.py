"""Extract the console's msgids and update its catalogues.

    python -m app.console.messages      # messages.pot, then zh_CN and en .po updated

Existing translations are kept; new msgids are added untranslated (the
i18n test then fails until each has its Chinese).
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
LOCALES = ("zh_CN", "en")


def extract() -> Catalog:
    """Every msgid of the console's Python modules and templates."""
    catalog = Catalog(project="gridline-console", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        HERE, method_map=METHODS, options_map=OPTIONS
    ):
        catalog.add(
            message,
            None,
            [(f"app/console/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def read_catalog(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale)
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def update() -> None:
    template = extract()
    LOCALE_DIR.mkdir(parents=True, exist_ok=True)
    with (LOCALE_DIR / "messages.pot").open("wb") as handle:
        write_po(handle, template, omit_header=True, sort_output=True)
    for locale in LOCALES:
        catalog = read_catalog(locale)
        catalog.update(template, no_fuzzy_matching=True)
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, omit_header=True, sort_output=True, ignore_obsolete=True)


if __name__ == "__main__":
    update()
