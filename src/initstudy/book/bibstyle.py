"""Sphinx extension: readable author-year labels for the bibliography.

sphinxcontrib-bibtex labels every bibliography entry with its pybtex formatting style's label
style; the default ("alpha") strips the LaTeX of the names character by character, which
garbles them (``Doll{\\'a}r`` becomes "Dollar", the brace-protected corporate author
``{The initstudy authors}`` becomes "Theiauthors26"). This module registers

- the pybtex label style ``authoryear``: "Shastri, 2020", "Glorot and Bengio, 2010",
  "Goyal et al., 2017", "The initstudy authors, 2026" (names decoded from LaTeX, braces
  dropped; a letter after the year when two entries would get the same label);
- the pybtex sorting style ``authoryear``: by the names as the labels spell them (accents and
  braces ignored, so "{The initstudy authors}" sorts under T, "Dollár" as "Dollar"), then year
  and title;
- the pybtex formatting style ``authoryear``: pybtex's "alpha" style (same entry formatting)
  with that label and sorting style.

Select it with ``bibtex_default_style: authoryear`` (``_config.yml``, ``sphinx: config:``); the
in-text citations keep ``bibtex_reference_style: author_year``.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import pybtex.plugin
from pybtex.database import Entry, Person
from pybtex.richtext import Text
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle

__all__ = ["NAME", "AuthorYearLabelStyle", "AuthorYearSortingStyle", "AuthorYearStyle", "label", "register",
           "setup"]

#: The name of the plugins (label, sorting and formatting style).
NAME = "authoryear"


def _latex_to_text(latex: str) -> str:
    """Plain text of a BibTeX field: accents decoded, protecting braces dropped."""
    return " ".join(Text.from_latex(latex).render_as("text").split())


def _surname(person: Person) -> str:
    """A person's "von" part and last name as plain text ("Dollár", "The initstudy authors")."""
    parts = [p.render_as("text") for p in (*person.rich_prelast_names, *person.rich_last_names)]
    text = " ".join(" ".join(parts).split())
    return text or _latex_to_text(str(person))


def _names(persons: Sequence[Person]) -> str:
    persons = list(persons)
    etal = len(persons) > 1 and str(persons[-1]) == "others"
    if etal:
        persons = persons[:-1]
    if len(persons) == 1:
        return _surname(persons[0]) + (" et al." if etal else "")
    if len(persons) == 2 and not etal:
        return f"{_surname(persons[0])} and {_surname(persons[1])}"
    return f"{_surname(persons[0])} et al."


def _who(entry: Entry) -> str:
    for role in ("author", "editor"):
        if entry.persons.get(role):
            return _names(entry.persons[role])
    for field in ("organization", "institution", "publisher", "key", "title"):
        if entry.fields.get(field):
            return _latex_to_text(entry.fields[field])
    return entry.key


def label(entry: Entry) -> str:
    """The author-year label of one entry, without the disambiguating letter."""
    year = _latex_to_text(entry.fields["year"]) if entry.fields.get("year") else "n.d."
    return f"{_who(entry)}, {year}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """pybtex label style: "Author, year", "A and B, year", "A et al., year"; "2017a",
    "2017b" (in the bibliography's order) when labels would collide."""

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        labels = [label(entry) for entry in sorted_entries]
        count = Counter(labels)
        seen: Counter[str] = Counter()
        for lab in labels:
            if count[lab] == 1:
                yield lab
            else:
                yield lab + chr(ord("a") + seen[lab])
                seen[lab] += 1


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).casefold()


class AuthorYearSortingStyle(BaseSortingStyle):
    """pybtex sorting style: surnames (then first names) as plain text, year, title."""

    def sorting_key(self, entry: Entry) -> tuple[str, str, str]:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        if persons:
            who = "   ".join(
                _surname(p) + "  " + " ".join(x.render_as("text") for x in (*p.rich_first_names, *p.rich_middle_names))
                for p in persons)
        else:
            who = _who(entry)
        return (_fold(who), entry.fields.get("year", ""), _fold(_latex_to_text(entry.fields.get("title", ""))))


class AuthorYearStyle(AlphaStyle):
    """pybtex formatting style: "alpha"'s entry formatting with author-year labels and order."""

    default_label_style = NAME
    default_sorting_style = NAME


def register() -> None:
    """Register the three plugins with pybtex (idempotent)."""
    pybtex.plugin.register_plugin("pybtex.style.labels", NAME, AuthorYearLabelStyle, force=True)
    pybtex.plugin.register_plugin("pybtex.style.sorting", NAME, AuthorYearSortingStyle, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle, force=True)


def setup(app) -> dict:
    register()
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
