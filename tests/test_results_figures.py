import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from initstudy.study import figures, results  # noqa: E402


def test_save_table_round_trip_and_bytes(tmp_path):
    df = pd.DataFrame({"a": [0.1, 1 / 3], "b": ["x", "y"]})
    path = results.save_table(df, tmp_path / "t" / "table.csv")
    back = results.read_table(path)
    assert back["a"].tolist() == [0.1, 1 / 3]
    first = path.read_bytes()
    results.save_table(df, path)
    assert path.read_bytes() == first


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "claims.json"
    results.atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        results.atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        results.atomic_write_text(path, "new")
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["claims.json"]  # no temp file left


def test_provenance_has_everything(tmp_path):
    prov = results.provenance(notebook="nb", profile="smoke", params={"seeds": 2}, device="cpu")
    for key in ("git", "packages", "python", "platform", "device", "profile", "params", "started",
                "torch_threads"):
        assert key in prov
    from importlib.metadata import version  # what is installed, read apart from the code under test

    assert prov["packages"]["torch"] == version("torch") and prov["packages"]["torchvision"] == version("torchvision")
    assert results.git_commit(tmp_path) == {"commit": None, "dirty": None}


def test_publish_writes_png_svg_and_manifest(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ax.set(xlabel="step", ylabel="loss")
    entry = figures.publish(fig, "fig-zero-symmetry-test", tmp_path, params={"seeds": 3})
    assert (tmp_path / "fig-zero-symmetry-test.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "fig-zero-symmetry-test.svg").read_bytes()[:400]
    assert figures.read_manifest(tmp_path) == [entry]
    fig2, _ = plt.subplots()
    figures.publish(fig2, "fig-zero-symmetry-test", tmp_path)  # replaced, not duplicated
    assert len(figures.read_manifest(tmp_path)) == 1
    with pytest.raises(ValueError, match="figure id"):
        figures.publish(fig2, "Figure 1", tmp_path)


def test_svg_export_is_deterministic(tmp_path):
    figures.set_style()
    outs = []
    for i in range(2):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, 0, 1])
        ax.set(xlabel="step", ylabel="loss")
        figures.publish(fig, "fig-test-determinism", tmp_path / str(i))
        outs.append((tmp_path / str(i) / "fig-test-determinism.svg").read_bytes())
    assert outs[0] == outs[1]


def test_captions_from_notebook(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": [
        "Text.\n", "```{glue:figure} fig-a-b\n", ":name: fig-a-b\n", "\n", "The caption\n", "on two lines.\n",
        "```\n"]}]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert figures.captions_from_notebook(path) == {"fig-a-b": "The caption on two lines."}


def test_publish_refuses_a_figure_unreadable_at_page_width(tmp_path):
    import pandas as pd

    fig, ax = plt.subplots(figsize=(16, 3))  # shrunk by half on the page: 10 pt text reads as 5 pt
    ax.plot([0, 1], [1, 0])
    ax.set(xlabel="step", ylabel="loss")
    with pytest.raises(ValueError, match="does not read at page width"):
        figures.publish(fig, "fig-test-wide", tmp_path)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [1, 0])
    with pytest.raises(ValueError, match="no x label"):
        figures.publish(fig, "fig-test-unlabelled", tmp_path)
    ax.set(xlabel="step", ylabel="loss")
    data = pd.DataFrame({"seed": [0, 2], "step": [0, 1], "loss": [1.0, 0.0]})
    entry = figures.publish(fig, "fig-test-ok", tmp_path, data=data, seeds=[0, 2])
    assert entry["data"] == "fig-test-ok.csv" and entry["seeds"] == [0, 2]
    assert (tmp_path / "fig-test-ok.csv").read_text().startswith("seed,step,loss")


def test_published_figures_show_accuracy_in_per_cent_and_log_ticks_at_full_size(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from initstudy.study import figures

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(9, 3))
    a.plot([1, 2, 3], [0.1, 0.5, 0.9]); a.set(xlabel="step", ylabel="test accuracy", ylim=(0, 1))
    b.plot([1, 2, 3], [0.2, 0.5, 0.9]); b.set(xlabel="step", ylabel="accuracy minus BN (points)", ylim=(0, 1))
    c.plot([1, 10, 100], [1e-8, 1.0, 1e6]); c.set(xlabel="depth", ylabel="ratio", yscale="log", xscale="log")
    figures.finish_axes(fig)
    fig.canvas.draw()
    assert [t.get_text() for t in a.get_yticklabels()][:3] == ["0%", "20%", "40%"]
    assert "%" not in "".join(t.get_text() for t in b.get_yticklabels())  # a difference in points stays
    labels = [t.get_text() for t in c.get_yticklabels() if t.get_text()]
    assert labels and not any("$" in t or "^" in t for t in labels) and any(t.startswith("1e-") for t in labels)
    plt.close(fig)
