"""The Robustness page through AppTest: it runs with no checkpoints and with a folder of them, runs a tiny
evaluation in the background to completion (the counts of one analysis.evaluate_corruptions call over the
grid), cancels, reloads the page's own results and those of ``python -m analysis.robustness``, and turns bad
files into messages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import test_app_checkpoint_files as checkpoints
from streamlit.testing.v1 import AppTest

from analysis import load_checkpoint
from analysis.robustness import evaluate_corruptions
from analysis.robustness.__main__ import main as robustness_cli
from app.lib.checkpoints import ENV_VAR
from app.lib.robustness_runs import report_csv, report_json
from msda.data import load_dataset

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "2_Robustness.py"
TIMEOUT = 120
TINY = {"rob:corruptions:noise": ["gaussian_noise"], "rob:corruptions:digital": ["contrast"]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    checkpoints.write_folder(folder)
    return folder


def open_page(monkeypatch, folder: Path) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def page(monkeypatch, folder) -> AppTest:
    return open_page(monkeypatch, folder)


def choose_tiny_run(at: AppTest, *, n: int = 8, severities=(2,)) -> AppTest:
    at.button(key="rob:preset:none").click().run()
    for key, names in TINY.items():
        at.multiselect(key=key).set_value(names)
    at.multiselect(key="rob:severities").set_value(list(severities))
    at.number_input(key="rob:n").set_value(n)
    return at.run()


def run_to_completion(at: AppTest, timeout: float = 60) -> AppTest:
    at.button(key="rob:start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run = at.session_state["rob:run"]
    assert run.wait(timeout), f"the run did not finish in {timeout} s: {run.status} {run.message}"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def has_key(at: AppTest, key: str) -> bool:
    try:
        return bool(at.get_by_key(key))
    except KeyError:
        return False


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_no_checkpoints_is_a_note_and_run_says_what_is_missing(monkeypatch, tmp_path, state):
    folder = tmp_path / "checkpoints"
    if state == "empty":
        folder.mkdir()
    at = open_page(monkeypatch, folder)
    assert any(str(folder) in i.value for i in at.info)
    at.button(key="rob:start").click().run()
    assert not at.exception
    assert any("The run was not started: choose at least one checkpoint" in e.value for e in at.error)


def test_a_tiny_run_completes_and_shows_the_summary(page, folder):
    choose_tiny_run(page)
    run_to_completion(page)
    run = page.session_state["rob:run"]
    assert run.status == "done", (run.status, run.error)
    assert any("Run finished" in s.value for s in page.success)
    summary = page.dataframe[0].value
    assert list(summary["model"]) == list(checkpoints.METHODS)
    assert {"clean_error", "corrupted_accuracy"} <= set(summary.columns)
    assert list(summary["method"]) == list(checkpoints.METHODS) and list(summary["seed"]) == [0, 0, 0]
    assert "2 corruptions × severities 2, 8 images per cell, 8 clean" in text(page)
    for key in ("rob:heatmaps", "rob:bars", "rob:download_json", "rob:download_csv"):
        assert has_key(page, key), key

    # Cell by cell, the page counts what one call over the whole grid counts.
    models = {method: load_checkpoint(folder / f"{method}.safetensors")[0] for method in checkpoints.METHODS}
    images, labels = load_dataset("shapes", "test", n=8, size=32, seed=0).as_tensors()
    whole = evaluate_corruptions(models, images, labels, corruptions=["gaussian_noise", "contrast"], severities=[2],
                                 generator_seed=0)
    shown = run.shown.results
    assert shown.corruptions == whole.corruptions and shown.severities == whole.severities
    assert shown.correct.tolist() == whole.correct.tolist() and shown.total.tolist() == whole.total.tolist()
    assert shown.clean_correct.tolist() == whole.clean_correct.tolist() and int(shown.clean_total) == 8


def test_the_page_reloads_its_own_json_and_csv(page):
    choose_tiny_run(page)
    page.toggle(key="rob:fgsm").set_value(True)
    run_to_completion(page)
    report = page.session_state["rob:run"].shown.report
    expected = page.dataframe[0].value
    assert has_key(page, "rob:fgsm_chart")
    for name, data in (("robustness.json", report_json(report)), ("robustness.csv", report_csv(report))):
        page.file_uploader(key="rob:reload").set_value((name, data, "application/octet-stream")).run()
        assert not page.exception and not page.error
        assert f"From the file {name}" in text(page)
        reloaded = page.dataframe[0].value
        np.testing.assert_allclose(reloaded["corrupted_accuracy"], expected["corrupted_accuracy"])
        assert has_key(page, "rob:fgsm_chart")


def test_a_json_written_by_the_command_line_reloads(page, folder, tmp_path):
    out = tmp_path / "report"
    robustness_cli(["--checkpoint", str(folder / "cutmix.safetensors"), str(folder / "none.safetensors"),
                    "--data", "shapes-c", "--n", "8", "--corruptions", "fog", "pixelate", "--severities", "1", "3",
                    "--fgsm-eps", "none", "--device", "cpu", "--no-progress", "--out", str(out)])
    data = (out / "robustness.json").read_bytes()
    page.file_uploader(key="rob:reload").set_value(("robustness.json", data, "application/json")).run()
    assert not page.exception and not page.error
    summary = page.dataframe[0].value
    written = json.loads(data)["summary"]
    assert list(summary["model"]) == ["cutmix", "none"]
    np.testing.assert_allclose(summary["corrupted_accuracy"], [row["corrupted_accuracy"] for row in written])
    assert list(summary["method"]) == ["cutmix", "none"]


@pytest.mark.parametrize("name, data, message", [
    ("notes.json", b"not json at all", "notes.json could not be read as JSON"),
    ("other.json", b'{"summary": []}', "other.json: it has no list of rows"),
    ("holes.json", json.dumps({"rows": [{"model": "a", "kind": "corruption", "corruption": "fog", "severity": 1,
                                          "correct": 1, "total": 2},
                                         {"model": "b", "kind": "corruption", "corruption": "snow", "severity": 1,
                                          "correct": 1, "total": 2}]}).encode(),
     "holes.json has no row for a, snow, severity 1"),
    ("odd.json", json.dumps({"rows": [{"model": "a", "kind": "corruption", "corruption": "rain", "severity": 1,
                                        "correct": 1, "total": 2}]}).encode(), "names corruption 'rain'"),
], ids=["not-json", "no-rows", "incomplete-grid", "unknown-corruption"])
def test_a_bad_results_file_is_a_message(page, name, data, message):
    page.file_uploader(key="rob:reload").set_value((name, data, "application/json")).run()
    assert not page.exception
    assert any(message in e.value for e in page.error), [e.value for e in page.error]


def test_a_run_can_be_cancelled(page):
    page.button(key="rob:preset:all 19").click().run()
    page.multiselect(key="rob:severities").set_value([1, 2, 3, 4, 5])
    page.number_input(key="rob:n").set_value(8).run()
    page.button(key="rob:start").click().run()
    page.button(key="rob:cancel").click().run()
    run = page.session_state["rob:run"]
    assert run.wait(60)
    page.run()
    assert run.status == "cancelled" and run.done < run.total
    assert any("cancelled" in w.value for w in page.warning)
    assert not page.exception
    if run.shown is not None:  # a cancelled run keeps the cells it finished, as a complete grid
        results = run.shown.results
        assert results.total.numel() <= run.done and (results.total > 0).all()


def start_long_run(at: AppTest):
    """Press Run on all 19 corruptions × 5 severities of 8 images: long enough to be looked at while it runs."""
    at.button(key="rob:preset:all 19").click().run()
    at.multiselect(key="rob:severities").set_value([1, 2, 3, 4, 5])
    at.number_input(key="rob:n").set_value(8).run()
    at.button(key="rob:start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at.session_state["rob:run"]


def page_text(at: AppTest) -> str:
    """Everything the page shows as text (its widgets' labels too)."""
    parts = [element.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                                        "subheader") for element in getattr(at, kind)]
    parts += [str(getattr(button, "label", "")) for button in at.button]
    return "\n".join(map(str, parts))


def test_cross_session_control_a_second_session_cannot_see_or_cancel_the_first_run(monkeypatch, folder):
    from app.lib.robustness_runs import active_runs, find_run, server_queue

    first = open_page(monkeypatch, folder)
    run = start_long_run(first)
    first_owner = first.session_state["rob:owner"]
    try:
        # Ids are unguessable (128 random bits), not the time of day: none is ever in another session's reach.
        assert len(run.id) >= 22 and not run.id.replace("-", "").isdigit()
        assert run.id != first_owner and run.owner == first_owner

        # A second session — a new visitor, or one who typed the first run's id into the address.
        for address in ({}, {"run": run.id}):
            second = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
            for key, value in address.items():
                second.query_params[key] = value
            second.run()
            assert not second.exception, [e.value for e in second.exception]
            assert "rob:run" not in second.session_state  # no run object
            assert not has_key(second, "rob:cancel") and not has_key(second, "rob:cancel_blocking")
            shown = page_text(second)
            assert run.id not in shown and first_owner not in shown
            assert "The server is busy: 1 run of other sessions is waiting or running" in shown
            second_owner = second.session_state["rob:owner"]
            assert second_owner != first_owner
            # Nor through the library: another session's key finds nothing by the id, lists nothing, counts one.
            assert find_run(second_owner, run.id) is None and find_run(None, run.id) is None
            assert active_runs(second_owner) == [] and active_runs(None) == []
            assert server_queue(second_owner).others == 1 and server_queue(second_owner).mine == 0
        assert find_run(first_owner, run.id) is run and active_runs(first_owner) == [run]
        assert run.active  # nothing the second session did touched it
    finally:
        run.cancel()
        assert run.wait(60)


def test_a_run_cancelled_on_its_page_keeps_its_finished_cells(monkeypatch, folder):
    first = open_page(monkeypatch, folder)
    run = start_long_run(first)
    deadline = time.monotonic() + 60
    while run.done < 2 and time.monotonic() < deadline:  # let it finish two cells
        time.sleep(0.1)
    assert run.done >= 2 and run.active
    first.button(key="rob:cancel").click().run()
    assert run.wait(60) and run.status == "cancelled"
    first.run()
    # The finished cells stay: the first corruption at the severities it finished (19 × 5 were asked).
    results = run.shown.results
    assert results.corruptions == ("gaussian_noise",) and len(results.severities) >= 2
    assert (results.total == 8).all()
    assert any("finished cell" in w.value for w in first.warning)
    assert first.dataframe[0].value["corrupted_accuracy"].notna().all()


def test_a_second_sessions_run_waits_its_turn_and_can_cancel_only_itself(monkeypatch, folder):
    first = open_page(monkeypatch, folder)
    blocking = start_long_run(first)
    second = open_page(monkeypatch, folder)
    choose_tiny_run(second)
    second.button(key="rob:start").click().run()
    waiting = second.session_state["rob:run"]
    assert waiting is not blocking and waiting.owner != blocking.owner
    deadline = time.monotonic() + 30
    while "ahead of it" not in waiting.message and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting.status == "waiting" and waiting.ahead == 1
    assert waiting.message == "waiting for its turn: 1 run ahead of it on this server"  # a count, not a name
    second.run()
    assert has_key(second, "rob:cancel") and not has_key(second, "rob:cancel_blocking")
    assert blocking.id not in page_text(second)
    first.button(key="rob:cancel").click().run()  # only the first session can cancel its run
    assert blocking.wait(60) and blocking.status == "cancelled"
    assert waiting.wait(60) and waiting.status == "done", (waiting.status, waiting.error)


def test_a_run_whose_page_is_gone_is_cancelled_after_the_grace(monkeypatch, folder):
    from app.lib import robustness_runs
    from app.lib.checkpoints import list_shipped, load_shipped
    from app.lib.robustness_runs import RunRequest, new_owner, start_run

    from analysis import CORRUPTIONS

    monkeypatch.setattr(robustness_runs, "ORPHAN_GRACE_S", 0.2)
    model = load_shipped(list_shipped(folder)[0][0])
    page = {"open": True}
    run = start_run(RunRequest("shapes", CORRUPTIONS, (1, 2, 3, 4, 5), 8), [model], owner=new_owner(),
                    alive=lambda: page["open"])
    deadline = time.monotonic() + 60
    while run.done < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    page["open"] = False  # the tab is closed
    assert run.wait(60) and run.status == "cancelled"
    assert run.message.startswith("cancelled (its page was closed) after")


def test_a_reloaded_csv_of_a_seed_sweep_says_why_it_has_no_per_method_verdicts(page, tmp_path):
    from analysis.robustness import RobustnessResults, build_report

    models = ("none-s0", "none-s1", "mixup-s0", "mixup-s1")
    correct = torch.tensor([[[5]], [[6]], [[7]], [[8]]])
    results = RobustnessResults(models, ("fog",), (1,), correct, torch.tensor([[8]]), torch.tensor([6, 7, 7, 8]),
                                torch.tensor(8))
    checkpoints = {name: {"method": name.split("-")[0], "seed": int(name[-1])} for name in models}
    report = build_report(results, {}, alexnet=False, data={}, checkpoints=checkpoints, settings={})
    page.file_uploader(key="rob:reload").set_value(("robustness.csv", report_csv(report), "text/csv")).run()
    assert not page.exception and not page.error
    assert len(page.dataframe) == 1  # the summary only: counts carry no per-image outcome to compare paired
    assert "Per-method intervals and verdicts need every image's outcome" in text(page)
    assert "spread" not in text(page)


def _with_shipped_robustness(folder: Path) -> Path:
    """The folder's manifest with a robustness report's per-method table, as msda.training.manifest copies it."""
    manifest = json.loads((folder / "manifest.json").read_text())
    row = lambda method, mean, half, verdict, replicated: {  # noqa: E731
        "method": method, "seeds": 3, "mean_corrupted_accuracy_15_mean": mean,
        "mean_corrupted_accuracy_15_ci_low": mean - half, "mean_corrupted_accuracy_15_ci_high": mean + half,
        "clean_error_mean": 0.05, "clean_error_ci_low": 0.04, "clean_error_ci_high": 0.06,
        "mean_corrupted_accuracy_15_vs_none": verdict, "mean_corrupted_accuracy_15_replicated": replicated}
    manifest["reports"] = {"robustness": {
        "command": "python -m analysis.robustness --checkpoint 'checkpoints/seeds/*.safetensors' --n 300",
        "interval": "Intervals are 95 % paired bootstrap intervals over seeds and test images.",
        "methods": [row("none", 0.80, 0.01, "baseline", None), row("mixup", 0.86, 0.02, "better", True)]}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_before_a_run_the_page_shows_the_shipped_study_from_the_manifest(monkeypatch, tmp_path):
    at = open_page(monkeypatch, _with_shipped_robustness(checkpoints_folder(tmp_path)))
    assert "The shipped checkpoints, as the project measured them" in [h.value for h in at.subheader]
    table = at.dataframe[-1].value
    assert list(table["method"]) == ["mixup", "none"]  # ordered by the mean corrupted accuracy
    assert list(table["corrupted (15) %"]) == ["86.0 [84.0, 88.0]", "80.0 [79.0, 81.0]"]
    assert list(table["vs none"]) == ["better", "(baseline)"] and list(table["replicated"]) == ["yes", ""]
    assert any("--n 300" in c.value and "95 % paired bootstrap" in c.value for c in at.caption)
    (chart,) = [c for c in at.get("plotly_chart")]  # the interval of every method, as error bars
    (trace,) = json.loads(chart.proto.spec)["data"]
    assert trace["x"] == ["mixup", "none"] and trace["error_y"]["array"] == pytest.approx([2.0, 1.0])


def test_a_shipped_table_from_before_the_intervals_is_not_shown(monkeypatch, tmp_path):
    folder = _with_shipped_robustness(checkpoints_folder(tmp_path))
    manifest = json.loads((folder / "manifest.json").read_text())
    for row in manifest["reports"]["robustness"]["methods"]:  # the old mean ± sd table with its spread rule
        for key in [key for key in row if key.endswith(("_ci_low", "_ci_high"))]:
            row[key.rsplit("_ci_", 1)[0] + "_sd"] = row.pop(key)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    at = open_page(monkeypatch, folder)
    assert not any("as the project measured them" in h.value for h in at.subheader)


def test_without_a_study_in_the_manifest_there_is_no_such_section(page):
    assert not any("as the project measured them" in h.value for h in page.subheader)


def checkpoints_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoints"
    checkpoints.write_folder(folder)
    return folder
