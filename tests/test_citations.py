"""Citations: readable bibliography labels, the article's title, the papers' numbers' sources."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from html import unescape
from pathlib import Path

import pybtex.plugin
import pytest
import yaml
from pybtex.database import BibliographyData, Entry, Person, parse_file

from initstudy.book import bibstyle
from initstudy.study.paper import PAPER_NUMBERS

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "references.bib"

#: A readable label: names (letters, spaces, apostrophes, hyphens, dots), a comma, a year and
#: at most one disambiguating letter.
READABLE = re.compile(r"^[^\W\d_][\w .'\-]*, (\d{4}|n\.d\.)[a-z]?$")


def garbage(label: str) -> list[str]:
    """Why a label is not readable (empty list: it is)."""
    why = []
    if not READABLE.match(label):
        why.append("not 'Names, year'")
    if re.search(r"[^\W\d_]\d", label):
        why.append("year glued to a name")
    if re.search(r"Dollar|\\|[{}]", label):
        why.append("LaTeX stripped or left in")
    if "+" in label:
        why.append("alpha's '+' for more names")
    return why


@pytest.fixture(scope="module")
def bib() -> BibliographyData:
    return parse_file(str(BIB))


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def sorted_labels(style_name: str, entries) -> list[tuple[Entry, str]]:
    """The entries in the style's order with their labels, as sphinxcontrib-bibtex gets them."""
    bibstyle.register()
    style = pybtex.plugin.find_plugin("pybtex.style.formatting", style_name)()
    ordered = style.sort(list(entries))
    return list(zip(ordered, style.format_labels(ordered)))


def labels_of(style_name: str, entries) -> dict[str, str]:
    return {e.key: lab for e, lab in sorted_labels(style_name, entries)}


def test_the_garbage_check_catches_the_alpha_labels(bib):
    alpha = labels_of("alpha", bib.entries.values())
    assert garbage(alpha["goyal2017accurate"]) and garbage(alpha["initstudy2026"])


def test_configured_bibliography_style_gives_readable_labels(bib, config):
    sphinx = config["sphinx"]
    assert "initstudy.book.ext" in sphinx["extra_extensions"]
    assert "initstudy.book.bibstyle" in sphinx["extra_extensions"]
    assert sphinx["config"]["bibtex_reference_style"] == "author_year"
    style = sphinx["config"].get("bibtex_default_style", "alpha")  # sphinxcontrib-bibtex's default
    labels = labels_of(style, bib.entries.values())
    assert set(labels) == set(bib.entries)
    bad = {key: (lab, garbage(lab)) for key, lab in labels.items() if garbage(lab)}
    assert not bad
    assert len(set(labels.values())) == len(labels)  # sphinxcontrib-bibtex warns on duplicates
    assert labels["goyal2017accurate"] == "Goyal et al., 2017"
    assert labels["initstudy2026"] == "The initstudy authors, 2026"
    assert labels["glorot2010understanding"] == "Glorot and Bengio, 2010"
    assert labels["shastri2020weight"] == "Shastri, 2020"
    assert labels["paszke2019pytorch"] == "Paszke et al., 2019"  # "and others"


@pytest.mark.parametrize("entry, expected", [
    (Entry("misc", fields={"year": "2017"}, persons={"author": [Person("Doll{\\'a}r, Piotr")]}), "Dollár, 2017"),
    (Entry("misc", fields={"year": "2026"}, persons={"author": [Person("{The initstudy authors}")]}),
     "The initstudy authors, 2026"),
    (Entry("misc", fields={"year": "1970"}, persons={"author": [Person("van der Berg, Jan")]}), "van der Berg, 1970"),
    (Entry("misc", fields={"year": "2001"}, persons={"author": [Person("M{\\\"u}ller, K."), Person("others")]}),
     "Müller et al., 2001"),
    (Entry("misc", fields={"title": "T"}, persons={"author": [Person("Smith, A.")]}), "Smith, n.d."),
    (Entry("proceedings", fields={"year": "2000", "organization": "{IEEE}"}), "IEEE, 2000"),
])
def test_label_function(entry, expected):
    assert bibstyle.label(entry) == expected
    assert unicodedata.is_normalized("NFC", bibstyle.label(entry))


def test_colliding_labels_get_letters():
    def entry(title):
        return Entry("misc", fields={"year": "2019", "title": title},
                     persons={"author": [Person("Zhang, H."), Person("Dauphin, Y."), Person("Ma, T.")]})

    labelled = sorted_labels(bibstyle.NAME, [entry("B title"), entry("C title"), entry("A title")])
    assert [(e.fields["title"], lab) for e, lab in labelled] == [
        ("A title", "Zhang et al., 2019a"), ("B title", "Zhang et al., 2019b"), ("C title", "Zhang et al., 2019c")]


def test_article_title_and_note(bib):
    entry = bib.entries["shastri2020weight"]
    assert entry.fields["title"] == "All the ways to initialize your neural network"
    assert [str(p) for p in entry.persons["author"]] == ["Shastri, Akash"]
    note = entry.fields["note"]
    assert "mirror" in note and "Chinese translation" in note and "deephub" in note
    assert not {"url", "doi", "month"} & {f.lower() for f in entry.fields}  # none could be confirmed


def test_every_paper_number_cites_an_entry_of_the_bibliography(bib):
    assert {n.paper for n in PAPER_NUMBERS} <= set(bib.entries)
    he = bib.entries["he2016deep"]
    assert he.fields["title"] == "Deep Residual Learning for Image Recognition"
    assert [p.last_names[0] for p in he.persons["author"]] == ["He", "Zhang", "Ren", "Sun"]


def test_glorot_numbers_are_checked_against_the_transcription():
    glorot = {(n.where, n.value): n for n in PAPER_NUMBERS if n.paper == "glorot2010understanding"}
    assert set(glorot) == {("Table 1", 1.76), ("Table 1", 1.64), ("Table 1", 2.21), ("Sec. 4.2.2", 0.5),
                           ("Sec. 4.2.2", 0.8)}
    for n in glorot.values():
        assert n.checked, n
        assert "gaotianpu/antiai" in n.note and "paper/Xavier_init.md" in n.note, n
        assert "recalled" not in n.note, n


def test_resnet110_baseline_is_he_et_al_mean_of_five_runs():
    [n] = [n for n in PAPER_NUMBERS if n.value == 6.61]
    assert n.paper == "he2016deep" and n.where == "Table 6" and n.unit == "%"
    assert "mean of 5 runs" in n.note
    assert "mean/median" not in n.note and "median of" not in n.note
    assert "6.43" in n.note and "6.61 ± 0.16" in n.note and "Fixup" in n.note
    assert n.claim == "fixup-trains-without-bn"


def test_fixup_fig3_reading_concerns_fixup_not_bn():
    [n] = [n for n in PAPER_NUMBERS if n.paper == "zhang2019fixup" and n.where.startswith("Fig. 3")]
    assert "issue #10" in n.note and "user" in n.note and "not BN" in n.note
    assert "BN and Fixup" not in n.quantity and "Fixup" in n.quantity
    assert not n.checked  # a reading of the figure in an issue, not the paper's text


def test_unchecked_tables_stay_recalled():
    for n in PAPER_NUMBERS:
        if n.paper in ("zhang2019fixup", "mishkin2016all"):
            assert not n.checked, n


def test_sphinx_bibliography_labels(tmp_path):
    """A minimal Sphinx project citing every key: the HTML labels are the author-year ones."""
    keys = list(parse_file(str(BIB)).entries)
    (tmp_path / "conf.py").write_text(
        "extensions = ['sphinxcontrib.bibtex', 'initstudy.book.bibstyle']\n"
        f"bibtex_bibfiles = [{str(BIB)!r}]\n"
        "bibtex_reference_style = 'author_year'\n"
        "bibtex_default_style = 'authoryear'\n")
    (tmp_path / "index.rst").write_text(
        "Citations\n=========\n\n" + "\n".join(f"- :cite:p:`{k}`" for k in keys) + "\n\n.. bibliography::\n")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(tmp_path),
                           str(tmp_path / "_build")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (tmp_path / "_build" / "index.html").read_text()
    labels = [unescape(re.sub(r"<[^>]+>", "", lab))
              for lab in re.findall(r'<span class="label"><span class="fn-bracket">\[</span>(.*?)<span class="fn', html)]
    assert len(labels) == len(keys)
    assert "Goyal et al., 2017" in labels and "The initstudy authors, 2026" in labels
    assert not [lab for lab in labels if garbage(lab)]
