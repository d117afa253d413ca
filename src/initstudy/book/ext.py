"""Sphinx extension: directives that render the generated pages of :mod:`initstudy.book.pages`.

- ``{claims-table}``: every claim with its verdict at the book's profile (and the published
  gpu verdict beside it, when present);
- ``{claims-criteria}``: the ledger: paraphrase, article section, metric and criterion;
- ``{figures-index}``: every figure with id, caption, chapter, parameters, seeds, downloads
  and a citation;
- ``{rerun-commands}``: every notebook's commands and parameters per profile;
- ``{environment-table}``: the provenance of the runs the book shows;
- ``{paper-numbers}``: every number the book compares with a paper, and whether it was checked;
- ``{limitations-table}``: per claim, what the book's profile could not settle, and why;
- the role ``{verdict}`claim-id``` pastes a claim's computed verdict into prose, and
  ``{result}`claim-id:metric``` a check's measured value with its interval;
- checked statements (:mod:`initstudy.book.statements`): ``{checked} PREDICATE`` renders its
  body and fails the build (a warning; an error under ``-W``) when the predicate over the
  results is false, naming the statement, the predicate and the numbers it read;
  ``{when} PREDICATE`` renders its body only where the predicate holds (text chosen by the
  data); ``{by-verdict} claim-id`` renders the block written for the claim's verdict out of
  one block per outcome (all four must be written).

Every chapter page (an executed notebook) also gets links to open its *source* notebook
(``notebooks/<name>.ipynb``) on Colab, on Binder and on the repository, built from
``repository`` and ``launch_buttons`` in ``_config.yml``; the theme's launch buttons (which
would open the page's own file, the executed copy, not in the repository) are pointed at the
same source notebook. The live-code configuration that sphinx-thebe writes into every page
names this repository too (Thebe itself stays off), not its default example repository.

Pages with an interactive figure (:meth:`initstudy.study.run.Run.interactive`) get plotly.js, which
the book serves from its own ``_static`` (copied from the installed plotly package): viewing
them fetches nothing, from disk too.

The profile is the ``initstudy_profile`` config value, overridden by the environment variable
``INITSTUDY_PROFILE`` (``python -m initstudy book --profile P`` sets it); the published
results folder is ``initstudy_published`` (or ``INITSTUDY_PUBLISHED``). Pages that use these
directives are re-read on every build, so they never show stale results.
"""

from __future__ import annotations

import os
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from sphinx.util import logging

from initstudy.study import claims as claims_mod
from initstudy.book import pages
from initstudy.book import statements
from initstudy.study.catalog import PROFILES
from initstudy.study.layout import DEFAULT_PROFILE, PROFILE_ENV, Layout


class _Generated(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        _mark_dynamic(self.env)
        container = nodes.container(classes=["initstudy-generated"])
        lines = StringList(self.markdown().splitlines(), source=self.env.docname)
        self.state.nested_parse(lines, self.content_offset, container)
        return [container]

    @property
    def profile(self) -> str:
        return _profile(self.env)

    @property
    def profile_dir(self) -> Path:
        return _profile_dir(self.env)

    @property
    def published_dir(self) -> Path:
        return Path(self.env.app.srcdir) / (os.environ.get("INITSTUDY_PUBLISHED") or self.config.initstudy_published)

    def markdown(self) -> str:  # pragma: no cover - every directive defines it
        raise NotImplementedError


class ClaimsTable(_Generated):
    def markdown(self) -> str:
        return pages.claims_table(self.profile_dir, self.profile, pages.published_rows(self.published_dir))


class ClaimsDetail(_Generated):
    def markdown(self) -> str:
        return pages.claims_detail(self.profile_dir, self.profile)


class ClaimsCriteria(_Generated):
    def markdown(self) -> str:
        return pages.claims_criteria()


class FiguresIndex(_Generated):
    def markdown(self) -> str:
        from initstudy import __version__

        options = self.config.html_theme_options or {}
        repo = (options.get("repository_url") or "").rstrip("/")
        where = self.profile_dir.relative_to(Path(self.env.app.srcdir)).as_posix()
        return pages.figures_index(self.profile_dir, self.profile, version=__version__, url=repo, where=where)


class ChapterList(_Generated):
    """The chapters in reading order, each with the claims it settles (from the declarations)."""

    def markdown(self) -> str:
        where = self.profile_dir.relative_to(Path(self.env.app.srcdir)).as_posix()
        return pages.chapter_list(lambda name: f"/{where}/{name}/{name}")


class RerunCommands(_Generated):
    def markdown(self) -> str:
        return pages.rerun_commands()


class EnvironmentTable(_Generated):
    def markdown(self) -> str:
        return pages.environment(self.profile_dir, self.profile)


class PaperNumbers(_Generated):
    def markdown(self) -> str:
        return pages.paper_numbers(self.profile_dir, self.profile)


class FreshSeeds(_Generated):
    """``{fresh-seeds} claim-id``: the fresh-seed run's verdict beside the claim's, in its chapter."""

    required_arguments = 1

    def markdown(self) -> str:
        claim_id = self.arguments[0]
        if claim_id not in claims_mod.LEDGER:
            raise self.error(f"unknown claim id {claim_id!r}")
        return pages.fresh_seeds_sentence(self.profile_dir, claim_id, self.profile)


class LimitationsTable(_Generated):
    def markdown(self) -> str:
        return pages.limitations(self.profile_dir, self.profile)


# ------------------------------------------------------------------ checked statements

_log = logging.getLogger(__name__)


def _profile(env) -> str:
    """The profile the book is built from: ``$INITSTUDY_PROFILE`` (set by ``python -m initstudy
    book``), else the ``initstudy_profile`` setting of ``_config.yml``."""
    return os.environ.get(PROFILE_ENV) or env.config.initstudy_profile


def _profile_dir(env) -> Path:
    """That profile's results, where ``$INITSTUDY_RESULTS`` (``book --results-dir``) or the
    book's ``results/`` folder holds them."""
    return Layout.find(env.app.srcdir).profile_dir(_profile(env))


def _mark_dynamic(env) -> None:
    docs = getattr(env, "initstudy_dynamic_docs", set())
    docs.add(env.docname)
    env.initstudy_dynamic_docs = docs


class _Statement(SphinxDirective):
    """Shared by ``checked`` and ``when``: the argument is the predicate, the body the text."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    strict = True

    def run(self) -> list[nodes.Node]:
        _mark_dynamic(self.env)
        predicate = self.arguments[0].strip()
        text = "\n".join(self.content).strip()
        try:
            outcome = statements.evaluate(predicate, statements.Evidence(_profile_dir(self.env)))
        except (statements.StatementError, KeyError) as err:
            _log.warning(f"statement cannot be checked: {text[:120]!r}: {err}", location=self.get_location())
            return []
        if not outcome.holds:
            if self.strict:
                _log.warning(f"contradicted statement: {text[:160]!r} -- predicate `{predicate}` is false; "
                             f"numbers: {outcome.describe()}", location=self.get_location())
            return []
        container = nodes.container(classes=["initstudy-checked"])
        lines = StringList(self.content.data, source=self.env.docname)
        self.state.nested_parse(lines, self.content_offset, container)
        return container.children


class Checked(_Statement):
    """A statement that must hold: false fails the build (a warning, an error under -W)."""


class When(_Statement):
    """A statement shown only where its predicate holds (text chosen by the data)."""

    strict = False


class ByVerdict(SphinxDirective):
    """The text written for the claim's computed verdict, out of one block per outcome."""

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        _mark_dynamic(self.env)
        claim_id = self.arguments[0].strip()
        evidence = statements.Evidence(_profile_dir(self.env))
        try:
            text = statements.pick_by_verdict("\n".join(self.content), evidence.verdict(claim_id),
                                              evidence.note(claim_id), evidence.provisional(claim_id))
            fresh = pages.stability_rows(_profile_dir(self.env)).get(claim_id) or {}
            if fresh.get("same") == "confirms":  # a changed criterion that fresh seeds confirmed: say so first
                text = statements.CONFIRMED.format(claim=claim_id, seeds=pages.seeds_of(fresh),
                                                   number=fresh.get("fresh_key_number", "")) + "\n\n" + text
        except (statements.StatementError, KeyError) as err:
            _log.warning(f"by-verdict {claim_id}: {err}", location=self.get_location())
            return []
        container = nodes.container(classes=["initstudy-by-verdict"])
        self.state.nested_parse(StringList(text.splitlines(), source=self.env.docname), self.content_offset,
                                container)
        return container.children


def result_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{result}`claim-id:metric``` pastes a check's measured value and interval (or
    ``claim-id:metric:control`` its negative control's)."""
    env = inliner.document.settings.env
    _mark_dynamic(env)
    parts = text.strip().split(":")
    try:
        view = statements.Evidence(_profile_dir(env)).check(parts[0], parts[1])
        data = view._data if len(parts) == 2 else view._data.get("control") or {}
        if len(parts) > 2 and not data:
            raise statements.StatementError(f"{parts[0]}:{parts[1]} has no negative control")
        shown = claims_mod.format_result(data)
    except (statements.StatementError, KeyError, IndexError) as err:
        msg = inliner.reporter.error(f"result {text!r}: {err}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.literal(rawtext, shown)], []


def verdict_badge_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{verdict-badge}`reproduced``` : the verdict's word in a coloured badge."""
    verdict = text.strip()
    cls = pages.VERDICT_CLASS.get(verdict, "not-measured")
    return [nodes.inline(rawtext, verdict, classes=["initstudy-verdict", f"verdict-{cls}"])], []


def param_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{param}`notebook:name``` : the value a parameter had in the run the book shows
    (from that run's provenance), so that prose never types a run's size by hand."""
    env = inliner.document.settings.env
    _mark_dynamic(env)
    notebook, _, pname = text.strip().partition(":")
    prov_path = _profile_dir(env) / notebook / "provenance.json"
    try:
        import json

        params = json.loads(prov_path.read_text(encoding="utf-8"))["params"]
        value = params[pname]
    except (OSError, ValueError, KeyError) as err:
        msg = inliner.reporter.error(f"param {text!r}: not found in {prov_path.name} ({err})", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return [nodes.Text(shown)], []


def verdict_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    env = inliner.document.settings.env
    profile = _profile(env)
    _mark_dynamic(env)
    try:
        verdict = pages.verdict_text(_profile_dir(env), profile, text.strip())
    except KeyError as err:
        msg = inliner.reporter.error(str(err), line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.strong(rawtext, verdict)], []


def _chapter_name(docname: str) -> str | None:
    from initstudy.study.catalog import NOTEBOOKS

    parts = docname.split("/")  # <results>/<profile>/<name>/<name>, the results folder anywhere in the book
    if len(parts) >= 4 and parts[-3] in PROFILES and parts[-2] == parts[-1] and parts[-1] in NOTEBOOKS:
        return parts[-1]
    return None


def _add_launch_links(app, doctree):
    """Links to open a chapter's source notebook on Colab, on Binder and on the repository."""
    name = _chapter_name(app.env.docname)
    options = app.config.html_theme_options or {}
    repo = options.get("repository_url")
    if name is None or not repo:
        return
    branch = options.get("repository_branch") or "main"
    launch = options.get("launch_buttons") or {}
    colab, binder = launch.get("colab_url"), launch.get("binderhub_url")
    para = nodes.paragraph(classes=["initstudy-launch"])
    para += nodes.Text("Run this chapter yourself: ")
    if colab:
        para += nodes.reference("", "open it in Colab", refuri=pages.colab_url(repo, branch, name, colab))
        para += nodes.Text(" (its first cell installs the library there, at this version)")
        para += nodes.Text(", or " if binder else "; or ")
    if binder:
        para += nodes.reference("", "on Binder", refuri=pages.binder_url(
            repo, branch, name, binder, launch.get("notebook_interface") or "jupyterlab"))
        para += nodes.Text(" (the repository's environment.yml); ")
    para += nodes.reference("", "read the notebook on the repository",
                            refuri=f"{repo.rstrip('/')}/blob/{branch}/notebooks/{name}.ipynb")
    para += nodes.Text(f"; or locally: python -m initstudy run {name} --profile cpu.")
    for section in doctree.findall(nodes.section):
        title = next(iter(section.findall(nodes.title)), None)
        if title is not None:
            section.insert(section.index(title) + 1, para)
            return


def source_launch_url(url: str, pagename: str, name: str) -> str:
    """A theme launch button's address, from the page's executed copy to its source notebook.

    >>> source_launch_url("https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/results/cpu/lsuv/lsuv.ipynb",
    ...                   "results/cpu/lsuv/lsuv", "lsuv")
    'https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/notebooks/lsuv.ipynb'
    """
    from urllib.parse import quote

    executed, source = f"{pagename}.ipynb", f"notebooks/{name}.ipynb"
    return url.replace(executed, source).replace(quote(executed, safe=""), quote(source, safe=""))


def _launch_buttons_to_source(app, pagename, templatename, context, doctree):
    """Point the theme's launch buttons (Binder, Colab, JupyterHub) of a chapter page at the
    chapter's source notebook: the theme points them at the page's own file, the executed copy
    under results/, which is not in the repository."""
    name = _chapter_name(pagename)
    if name is None:
        return
    for group in context.get("header_buttons") or []:
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons") or []:
            if button.get("url"):
                button["url"] = source_launch_url(button["url"], pagename, name)


def thebe_config_for(theme_options: dict, thebe_config: dict | None) -> dict:
    """sphinx-thebe's configuration with this repository (and branch) where it names none:
    sphinx-thebe writes its configuration into every page, with an example repository of
    Jupyter Book's by default, even while Thebe is off.

    >>> thebe_config_for({"repository_url": "https://github.com/a/b", "repository_branch": "main"}, {})
    {'repository_url': 'https://github.com/a/b', 'repository_branch': 'main'}
    """
    out = dict(thebe_config or {})
    repo = (theme_options or {}).get("repository_url")
    if repo:
        out.setdefault("repository_url", repo)
        out.setdefault("repository_branch", (theme_options or {}).get("repository_branch") or "main")
    return out


def _thebe_names_this_repository(app, config):
    if "thebe_config" in config:
        config.thebe_config = thebe_config_for(config.html_theme_options, config.thebe_config)


# ------------------------------------------------------------------ interactive figures

#: Where the book serves plotly.js (under _static).
PLOTLY_JS = "plotly/plotly.min.js"


def plotly_js_source() -> Path | None:
    """plotly.js as the installed plotly package ships it (None without plotly)."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def _serve_plotly(app):
    """Copy plotly.js into a folder of the build's static files (HTML builders only)."""
    if app.builder.format != "html":
        return
    source = plotly_js_source()
    if source is None:
        return
    import shutil

    folder = Path(app.outdir).parent / ".initstudy-static"
    target = folder / PLOTLY_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, target)
    if str(folder) not in map(str, app.config.html_static_path):
        app.config.html_static_path.append(str(folder))


def _plotly_on_interactive_pages(app, pagename, templatename, context, doctree):
    """Load plotly.js (from the book's own _static) on the pages that have an interactive figure."""
    from initstudy.study.run import INTERACTIVE_CLASS

    if INTERACTIVE_CLASS not in (context.get("body") or ""):
        return
    if plotly_js_source() is None:
        _log.warning(f"{pagename}: an interactive figure, but plotly is not installed (pip install -r "
                     "requirements.txt): the figure will not be drawn")
        return
    app.add_js_file(PLOTLY_JS)


def _outdated(app, env, added, changed, removed):
    return sorted(getattr(env, "initstudy_dynamic_docs", set()) - set(removed))


def _purge(app, env, docname):
    getattr(env, "initstudy_dynamic_docs", set()).discard(docname)


def _merge(app, env, docnames, other):
    env.initstudy_dynamic_docs = getattr(env, "initstudy_dynamic_docs", set()) | getattr(
        other, "initstudy_dynamic_docs", set())


def _one_of_each_script(app, pagename, templatename, context, doctree):
    """Each script once per page. Two extensions of the toolchain register sphinx-thebe's and
    sphinx-togglebutton's inline configuration, and MathJax, a second time: the repeated
    ``const THEBE_JS_URL`` stops the page's script with an error in the browser's console, and
    MathJax loads twice. The first of identical scripts (same file, or same inline body) stays."""
    seen, kept = set(), []
    for js in context.get("script_files", []):
        filename = getattr(js, "filename", str(js))
        body = (getattr(js, "attributes", None) or {}).get("body")
        key = (str(filename).split("?")[0].removeprefix("_static/") if filename else None, body)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


#: The longest alternative text a figure's image gets (its caption, cut at a word).
ALT_CHARS = 300


#: LaTeX commands of captions as a screen reader should read them.
_LATEX_WORDS = {r"\partial": "∂", r"\times": "×", r"\sqrt": "√", r"\sigma": "σ", r"\mathcal": "",
                r"\leq": "≤", r"\geq": "≥", r"\cdots": "…", r"\sim": "~", r"\text": "", r"\mathbb": "",
                r"\ln": "ln", r"\log": "log", r"\cdot": "·", r"\pm": "±", r"\approx": "≈", r"\le": "≤",
                r"\ge": "≥", r"\infty": "∞", r"\alpha": "α", r"\gamma": "γ", r"\mu": "μ", r"\mathrm": ""}


def _plain(text: str) -> str:
    r"""A caption's LaTeX made readable as plain text.

    >>> _plain(r"gradient $\partial L / \partial w$ times $g \times 2$")
    'gradient ∂L / ∂w times g × 2'
    >>> _plain(r"$\left( a \leq b \right)$")
    'left( a ≤ b right)'
    """
    import re

    for command, word in sorted(_LATEX_WORDS.items(), key=lambda kv: -len(kv[0])):
        glued = command in (r"\partial", r"\mathrm", r"\sqrt")  # these bind to what follows
        whole = re.escape(command) + (r"(?![A-Za-z])" if command[-1].isalpha() else "")  # not \le in \left
        text = re.sub(whole + " ?", (word if glued else word + " ") if command[-1].isalpha() else word, text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)  # any other command: its name
    return text.replace("$", "").replace("{", "").replace("}", "")


def _figure_alt_text(app, doctree, docname) -> None:
    """Each figure's image described by its caption (Sphinx otherwise writes the image's file
    path as its ``alt``, which a screen reader reads out): the caption's text, cut at
    :data:`ALT_CHARS` characters on a word boundary."""
    for figure in doctree.findall(nodes.figure):
        captions = list(figure.findall(nodes.caption))
        if not captions:
            continue
        text = _plain(" ".join(captions[0].astext().split()))
        if len(text) > ALT_CHARS:
            text = text[:ALT_CHARS].rsplit(" ", 1)[0] + " ..."
        for image in figure.findall(nodes.image):
            if not image.get("alt") or image.get("alt") == image.get("uri"):
                image["alt"] = text


def setup(app):
    app.add_config_value("initstudy_profile", DEFAULT_PROFILE, "env")
    app.add_config_value("initstudy_published", "published", "env")
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("claims-criteria", ClaimsCriteria)
    app.add_directive("claims-detail", ClaimsDetail)
    app.add_role("verdict-badge", verdict_badge_role)
    app.add_role("param", param_role)
    app.add_css_file("initstudy.css")
    app.add_directive("figures-index", FiguresIndex)
    app.add_directive("rerun-commands", RerunCommands)
    app.add_directive("chapter-list", ChapterList)
    app.add_directive("environment-table", EnvironmentTable)
    app.add_directive("paper-numbers", PaperNumbers)
    app.add_directive("limitations-table", LimitationsTable)
    app.add_directive("fresh-seeds", FreshSeeds)
    app.add_role("verdict", verdict_role)
    app.add_role("result", result_role)
    app.add_directive("checked", Checked)
    app.add_directive("when", When)
    app.add_directive("by-verdict", ByVerdict)
    app.connect("doctree-read", _add_launch_links)
    app.connect("doctree-resolved", _figure_alt_text)
    app.connect("config-inited", _thebe_names_this_repository)
    app.connect("builder-inited", _serve_plotly)
    # after the theme's own launch buttons (priority 501)
    app.connect("html-page-context", _launch_buttons_to_source, priority=600)
    app.connect("html-page-context", _plotly_on_interactive_pages)
    app.connect("html-page-context", _one_of_each_script, priority=900)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
