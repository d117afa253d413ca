"""The interactive figure: the signal's scale through depth for a slider over the gain (and a
menu over the activation), precomputed by the signal-depth chapter and drawn by plotly.js that
the book serves itself. The grid and the figure are checked here; a headless Chromium loads a
page with the figure from disk, checks that it requested nothing over the network and that
moving the slider changes the plot (skipped where no Chromium is installed).

Every check has a negative control: a page that asks for a script from the network is seen to,
a slider left alone leaves the plot as it was."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from headless import Browser, network_requests

from initstudy.book import ext as bookext
from initstudy.chapters import signal_depth as SD
from initstudy.study import figures
from initstudy.study.run import INTERACTIVE_CLASS, interactive_html

ACTS = ["identity", "relu", "tanh", "sigmoid"]
GAINS = (0.8, 0.9, 1.0, 1.1, 1.2)


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    return SD.gain_grid(ACTS, GAINS, [0, 1, 2], width=64, depth=12, batch=16)


@pytest.fixture(scope="module")
def summary(grid) -> pd.DataFrame:
    return SD.gain_grid_summary(grid)


# ------------------------------------------------------------------------------ the grid


def test_the_grid_has_every_activation_gain_seed_and_layer(grid):
    assert sorted(grid["activation"].unique()) == sorted(ACTS)
    assert sorted(grid["gain"].unique()) == list(GAINS)
    assert sorted(grid["seed"].unique()) == [0, 1, 2]
    assert sorted(grid["layer"].unique()) == list(range(13))
    assert len(grid) == len(ACTS) * len(GAINS) * 3 * 13
    assert (grid[grid["layer"] == 0]["rms_ratio"] == 1.0).all()
    assert SD.SLIDER_GAINS[0] == 0.5 and SD.SLIDER_GAINS[-1] == 1.5 and len(SD.SLIDER_GAINS) == 21
    assert {0.9, 0.95, 1.0, 1.05, 1.1} <= set(SD.SLIDER_GAINS)  # the static figure's gains are on the slider


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_one_draw_serves_every_gain(grid, activation):
    """Common random numbers: linear and ReLU stacks are positively homogeneous, so with the
    same draws the ratio at gain g is exactly g^L times the ratio at gain 1."""
    d = grid[(grid["activation"] == activation) & (grid["layer"] == 12)].set_index(["seed", "gain"])["rms_ratio"]
    for seed in (0, 1, 2):
        for g in GAINS:
            assert d[(seed, g)] == pytest.approx(g ** 12 * d[(seed, 1.0)], rel=1e-4)
    # negative control: across seeds the draws differ, so the same relation fails
    assert d[(1, 1.1)] != pytest.approx(1.1 ** 12 * d[(0, 1.0)], rel=1e-4)


def test_the_grid_is_reproducible_and_seeded():
    a = SD.gain_grid(["tanh"], (0.9, 1.1), [3], 32, 5, 8)
    b = SD.gain_grid(["tanh"], (0.9, 1.1), [3], 32, 5, 8)
    c = SD.gain_grid(["tanh"], (0.9, 1.1), [4], 32, 5, 8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["rms_ratio"], c["rms_ratio"])


def test_the_grid_follows_the_mean_field_theory_at_width():
    """Wide layers: the measured ratio is close to the theory (for the linear stack g^L)."""
    wide = SD.gain_grid_summary(SD.gain_grid(["identity", "tanh"], (0.9, 1.1), [0, 1, 2], 512, 10, 64))
    last = wide[wide["layer"] == 10]
    for _, row in last.iterrows():
        assert row["gmean"] == pytest.approx(row["theory"], rel=0.15), row.to_dict()
    lin = last[last["activation"] == "identity"].set_index("gain")["theory"]
    assert lin[1.1] == pytest.approx(1.1 ** 10) and lin[0.9] == pytest.approx(0.9 ** 10)


def test_a_curve_ends_where_float32_overflows():
    deep = SD.gain_grid(["identity"], (1.0, 1.5), [0], 16, 250, 4)
    big = deep[deep["gain"] == 1.5].set_index("layer")["rms_ratio"]
    assert math.isfinite(big[100]) and math.isnan(big[250])  # 1.5^250 > 3.4e38
    assert deep[deep["gain"] == 1.0]["rms_ratio"].notna().all()
    summ = SD.gain_grid_summary(deep)
    assert summ[(summ["gain"] == 1.5) & (summ["layer"] == 250)]["gmean"].isna().all()


def test_long_stacks_are_recorded_at_most_every_few_layers():
    g = SD.gain_grid(["identity"], (1.0,), [0], 8, 1000, 2, max_layers=100)
    layers = sorted(g["layer"].unique())
    assert layers[0] == 0 and layers[-1] == 1000 and len(layers) == 101


@pytest.mark.parametrize("kwargs, message", [
    ({"activations": ["softplus"]}, "unknown activation 'softplus'"),
    ({"gains": (0.0, 1.0)}, "gains must be positive"),
    ({"gains": ()}, "at least one activation, one gain and one seed"),
    ({"depth": 0}, "depth must be at least 1"),
])
def test_bad_input_is_one_line(kwargs, message):
    args = {"activations": ["tanh"], "gains": (1.0,), "seeds": [0], "width": 4, "depth": 3, "batch": 2, **kwargs}
    with pytest.raises(ValueError) as err:
        SD.gain_grid(**args)
    assert message in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------ the figure


def test_each_slider_step_shows_that_gains_curves(summary):
    fig = SD.interactive_gain_figure(summary)
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == [f"{g:g}" for g in GAINS]
    assert GAINS[slider.active] == 1.0
    acts = ["identity", "relu", "tanh", "sigmoid"]
    assert [t.name for t in fig.data] == [n + k for n in ("linear", "ReLU", "tanh", "sigmoid")
                                          for k in ("", " (theory)")]
    for step, g in zip(slider.steps, GAINS):
        ys = step.args[0]["y"]
        assert len(ys) == 2 * len(acts)
        for i, a in enumerate(acts):
            rows = summary[(summary["activation"] == a) & (summary["gain"] == g)].sort_values("layer")
            assert ys[2 * i] == pytest.approx(rows["gmean"].tolist(), rel=1e-3)
            assert ys[2 * i + 1] == pytest.approx(rows["theory"].tolist(), rel=1e-3)
    # negative control: two gains' steps differ (the slider changes the plot)
    assert slider.steps[0].args[0]["y"][0] != slider.steps[-1].args[0]["y"][0]
    # the figure starts at the slider's step
    assert list(fig.data[0].y) == slider.steps[slider.active].args[0]["y"][0]


def test_the_menu_shows_one_activation_or_all(summary):
    fig = SD.interactive_gain_figure(summary)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["all activations", "linear", "ReLU", "tanh", "sigmoid"]
    assert buttons[0].args[0]["visible"] == [True] * 8
    assert buttons[2].args[0]["visible"] == [False, False, True, True, False, False, False, False]


def test_the_still_version_reads_at_page_width(summary):
    figures.set_style()
    fig = SD.plot_gain_grid(summary)
    assert figures.readability_problems(fig) == []
    assert len(fig.axes[0].lines) == len(GAINS)


def test_the_book_html_needs_plotly_from_the_page_and_nothing_else(summary):
    html = interactive_html(SD.interactive_gain_figure(summary), "fig-test-slider")
    assert html.startswith(f'<div class="{INTERACTIVE_CLASS}" data-figure="fig-test-slider"')
    assert 'id="fig-test-slider-plot"' in html and 'id="fig-test-slider"' not in html  # the book's figure has that id
    assert "Plotly.newPlot" in html
    assert "<script src" not in html and "http" not in html.replace("http://www.w3.org", "")  # nothing to fetch
    assert interactive_html(SD.interactive_gain_figure(summary), "fig-test-slider") == html  # deterministic


def test_run_interactive_publishes_files_and_manifest(summary, tmp_path, monkeypatch):
    from initstudy.study.run import Run

    monkeypatch.setattr(figures, "_in_notebook", lambda: False)
    run = Run.__new__(Run)  # only what interactive() uses
    run.spec = type("Spec", (), {"claims": ("depth-explode-vanish",)})()
    run.params, run.profile, run.results_dir = {"seeds": 3, "width": 64}, "smoke", tmp_path
    figures.set_style()
    run.interactive(SD.interactive_gain_figure(summary), "fig-depth-explode-vanish-slider", SD.plot_gain_grid(summary),
                    data=summary, params=("seeds", "width"))
    folder = tmp_path / "figures"
    [entry] = figures.read_manifest(folder)
    assert entry["id"] == "fig-depth-explode-vanish-slider" and entry["claims"] == ["depth-explode-vanish"]
    name = "fig-depth-explode-vanish-slider"
    assert entry["files"] == {"png": f"{name}.png", "svg": f"{name}.svg", "interactive": f"{name}.plotly.json"}
    for name in entry["files"].values():
        assert (folder / name).stat().st_size > 1000
    assert json.loads((folder / entry["files"]["interactive"]).read_text())["layout"]["sliders"]
    assert entry["data"] == "fig-depth-explode-vanish-slider.csv" and entry["params"] == {"seeds": 3, "width": 64,
                                                                                            "profile": "smoke"}


def test_the_book_serves_plotly_from_the_installed_package():
    source = bookext.plotly_js_source()
    assert source is not None and source.stat().st_size > 1_000_000
    assert b"plotly.js v" in source.read_bytes()[:200]


# ------------------------------------------------------------------------------ in a browser


def write_page(folder, summary, script_src: str | None = None):
    """A page with the figure, plotly.js beside it as the book serves it (or ``script_src``)."""
    static = folder / "_static" / "plotly"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copy(bookext.plotly_js_source(), static / "plotly.min.js")
    src = script_src or "_static/plotly/plotly.min.js"
    body = interactive_html(SD.interactive_gain_figure(summary), "fig-test-slider")
    page = folder / "page.html"
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"><script src="{src}"></script></head>'
                    f'<body><main style="width: 780px">{body}</main></body></html>')
    return page


def drawn_state(page, fig_id: str) -> dict:
    """What the reader sees: the first curve's drawn path, the slider's label and its data."""
    return page.evaluate(f"""(() => {{
        const gd = document.querySelector('[data-figure="{fig_id}"] .plotly-graph-div');
        const path = gd.querySelector('.scatterlayer .trace path.js-line');
        const label = gd.querySelector('.slider-group > text.slider-label');
        return {{path: path && path.getAttribute('d'), label: label && label.textContent,
                 y: JSON.stringify(gd.data[0].y)}};
    }})()""")


def settled_state(page, fig_id: str, timeout: float = 10.0) -> dict:
    """:func:`drawn_state` once it no longer changes by itself."""
    import time

    state, deadline = drawn_state(page, fig_id), time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.browser.pump(0.3)
        now = drawn_state(page, fig_id)
        if now == state:
            return now
        state = now
    raise AssertionError(f"the figure {fig_id} kept changing by itself")


def move_slider(page, fig_id: str, fraction: float) -> None:
    """Click the slider's rail at ``fraction`` of its length, as a reader would."""
    rect = page.evaluate(f"""(() => {{
        const gd = document.querySelector('[data-figure="{fig_id}"] .plotly-graph-div');
        const rail = gd.querySelector('.slider-rail-touch-rect');
        rail.scrollIntoView({{block: 'center'}});
        const r = rail.getBoundingClientRect();
        return [r.left, r.top, r.width, r.height];
    }})()""")
    page.click(rect[0] + fraction * rect[2], rect[1] + rect[3] / 2)
    page.browser.pump(0.3)


def check_slider_moves_the_plot(page, fig_id: str, low: str, start: str, high: str) -> None:
    """Drawn at gain ``start``; the slider's far right shows gain ``high`` and its far left
    ``low``, each with other curves."""
    page.wait_for(f"document.querySelector('[data-figure=\"{fig_id}\"] .main-svg .scatterlayer path.js-line') !== null")
    before = settled_state(page, fig_id)  # (the plot is fitted to its column once the page has loaded)
    assert before["path"] and before["label"] == f"gain g = {start}", before
    page.browser.pump(0.5)
    assert drawn_state(page, fig_id) == before  # negative control: left alone, the plot stays
    move_slider(page, fig_id, 0.98)
    after = drawn_state(page, fig_id)
    assert after["label"] == f"gain g = {high}", after["label"]
    assert after["y"] != before["y"] and after["path"] != before["path"]
    move_slider(page, fig_id, 0.02)
    least = drawn_state(page, fig_id)
    assert least["label"] == f"gain g = {low}" and least["path"] not in (before["path"], after["path"])


def test_the_figure_works_from_disk_with_no_network_request(summary, tmp_path):
    page_file = write_page(tmp_path, summary)
    with Browser() as browser:
        page = browser.open(page_file)
        check_slider_moves_the_plot(page, "fig-test-slider", "0.8", "1", "1.2")
        assert page.requests and all(u.startswith("file://") for u in page.requests), page.requests
        assert network_requests(page.requests) == [] and page.failed == []


def test_the_browser_check_sees_a_network_request(summary, tmp_path):
    """Negative control: a page that asks for plotly.js from the network is seen to (the request
    goes nowhere: names resolve to nothing in the test browser), and its figure is not drawn."""
    page_file = write_page(tmp_path, summary, script_src="https://cdn.plot.ly/plotly-3.0.0.min.js")
    with Browser() as browser:
        page = browser.open(page_file)
        assert network_requests(page.requests) == ["https://cdn.plot.ly/plotly-3.0.0.min.js"]
        assert page.failed
        assert page.evaluate("document.querySelector('[data-figure=\"fig-test-slider\"] .main-svg') === null")


def test_the_book_loads_plotly_only_on_pages_with_an_interactive_figure(tmp_path):
    """A tiny Sphinx book with this extension: plotly.js is copied into its _static, and loaded
    by the page with an interactive figure (and by no other)."""
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text("extensions = ['initstudy.book.ext']\nhtml_theme = 'basic'\n")
    (src / "index.rst").write_text("Index\n=====\n\n.. toctree::\n\n   figure\n   plain\n")
    (src / "figure.rst").write_text(f'Figure\n======\n\n.. raw:: html\n\n   <div class="{INTERACTIVE_CLASS}"></div>\n')
    (src / "plain.rst").write_text("Plain\n=====\n\nNo figure here.\n")
    out = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = out / "_static" / bookext.PLOTLY_JS
    assert served.read_bytes() == bookext.plotly_js_source().read_bytes()
    assert 'src="_static/plotly/plotly.min.js' in (out / "figure.html").read_text()
    assert "plotly" not in (out / "plain.html").read_text() and "plotly" not in (out / "index.html").read_text()
