"""analysis.attacks: PGD's known answers (0 steps = clean, 1 step without random start = FGSM), agreement with
torchattacks, the ε-ball, reproducible random starts, restarts, bad input, the study and the command line."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from torch import nn

from analysis.attacks import AttackSettings, attack_outcomes, parse_eps, pgd
from analysis.robust_metrics import fgsm
from analysis.stats import VERDICTS
from msda.models import build_model
from msda.training.checkpoint import save_checkpoint


class SmallNet(nn.Module):
    """A small convolutional classifier with a loss surface worth attacking."""

    def __init__(self, seed: int = 0, classes: int = 4):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, classes)

    def forward(self, images):
        return self.fc(torch.relu(nn.functional.adaptive_avg_pool2d(self.conv(images), 4)).flatten(1))


def _batch(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def _accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def test_zero_steps_is_the_clean_image():
    model, (images, labels) = SmallNet(), _batch()
    for random_start in (True, False):
        attacked = pgd(model, images, labels, 8 / 255, steps=0, random_start=random_start)
        assert torch.equal(attacked, images)
    assert torch.equal(pgd(model, images, labels, 0.0, steps=10), images)


@pytest.mark.parametrize("eps", [1 / 255, 8 / 255, 0.3])
def test_one_step_without_random_start_is_fgsm(eps):
    model, (images, labels) = SmallNet(), _batch()
    attacked = pgd(model, images, labels, eps, steps=1, step_size=eps, random_start=False)
    assert torch.equal(attacked, fgsm(model, images, labels, eps))  # bit for bit, so the accuracies are equal


def test_stays_in_the_ball_and_the_image_range_and_is_stronger_with_more_steps():
    model, (images, labels) = SmallNet(), _batch(64)
    eps = 0.1
    weak = pgd(model, images, labels, eps, steps=1, step_size=eps, random_start=False)
    strong = pgd(model, images, labels, eps, steps=20, random_start=False)
    assert float((strong - images).abs().max()) <= eps + 1e-6 and float(strong.min()) >= 0 and float(strong.max()) <= 1
    assert _accuracy(model, strong, labels) <= _accuracy(model, weak, labels)
    assert _accuracy(model, strong, labels) < _accuracy(model, images, labels)


def test_random_starts_come_from_the_generator_and_restarts_only_help():
    model, (images, labels) = SmallNet(), _batch(64)
    runs = [pgd(model, images, labels, 0.03, steps=3, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(*runs)
    other = pgd(model, images, labels, 0.03, steps=3, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(runs[0], other)
    one = pgd(model, images, labels, 0.03, steps=3, restarts=1, generator=torch.Generator().manual_seed(5))
    three = pgd(model, images, labels, 0.03, steps=3, restarts=3, generator=torch.Generator().manual_seed(5))
    fooled_once = model(one).argmax(1) != labels
    fooled_thrice = model(three).argmax(1) != labels
    assert bool((fooled_thrice | ~fooled_once).all())  # what one restart fooled stays fooled
    assert torch.equal(three[fooled_once], one[fooled_once])


@pytest.mark.skipif(importlib.util.find_spec("torchattacks") is None,
                    reason="torchattacks is the reference here (pip install torchattacks; it pins requests~=2.25)")
@pytest.mark.parametrize("steps", [1, 5])
def test_agrees_with_torchattacks_without_random_start(steps):
    import torchattacks

    model, (images, labels) = SmallNet(seed=1), _batch(48, seed=1)
    eps, alpha = 8 / 255, 2 / 255
    reference = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(images, labels)
    ours = pgd(model, images, labels, eps, steps=steps, step_size=alpha, random_start=False, stop_at_success=False)
    assert torch.allclose(ours, reference, atol=1e-6)
    assert torch.equal(model(ours).argmax(1), model(reference).argmax(1))


@pytest.mark.parametrize("kwargs, message", [
    (dict(eps=math.nan), r"eps must be a finite number in \[0, 1\].*nan"),
    (dict(eps=2.0), r"eps must be a finite number in \[0, 1\].*2.0"),
    (dict(eps=-1 / 255), r"eps must be a finite number in \[0, 1\]"),
    (dict(steps=-1), r"steps must be an integer in \[0, 1000\], got -1"),
    (dict(steps=1001), r"steps must be an integer in \[0, 1000\], got 1001"),
    (dict(steps=2.5), "steps must be an integer"),
    (dict(restarts=0), r"restarts must be an integer in \[1, 100\], got 0"),
    (dict(step_size=0.0), r"step_size must be a finite number in \(0, 1\]"),
    (dict(step_size=math.inf), r"step_size must be a finite number in \(0, 1\]"),
    (dict(restarts=3, random_start=False), "restarts=3 needs random_start=True"),
])
def test_bad_settings_are_refused_in_one_line(kwargs, message):
    model, (images, labels) = SmallNet(), _batch(4)
    arguments = dict(eps=8 / 255, steps=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message) as error:
        pgd(model, images, labels, arguments.pop("eps"), **arguments)
    assert "\n" not in str(error.value)


def test_outputs_that_are_not_logits_are_refused():
    class Flat(nn.Module):
        def forward(self, images):
            return images.mean((1, 2, 3))

    images, labels = _batch(4)
    with pytest.raises(ValueError, match=r"logits \[batch, classes\]"):
        pgd(Flat(), images, labels, 8 / 255, steps=2)


def test_settings_and_eps_parsing():
    assert parse_eps("2/255, 1/255,2/255") == (1 / 255, 2 / 255)
    for text, message in (("1/0", "not a number"), ("nan", r"in \[0, 1\]"), ("3", r"in \[0, 1\]"), ("x", "not a number")):
        with pytest.raises(ValueError, match=message):
            parse_eps(text)
    with pytest.raises(ValueError, match="needs a random start"):
        AttackSettings(restarts=2, random_start=False)
    with pytest.raises(ValueError, match="step_fraction"):
        AttackSettings(step_fraction=math.nan)
    assert "10 steps of α = 0.25 ε" in AttackSettings().describe() and "8/255" in AttackSettings().describe()


def test_study_outcomes_match_the_attacks():
    models = {"a": SmallNet(0), "b": SmallNet(1)}
    images, labels = _batch(20)
    settings = AttackSettings(eps=(0.05, 0.2), steps=1, step_fraction=1.0, random_start=False)
    outcomes = attack_outcomes(models, images, labels, settings, batch_size=8)
    for name, model in models.items():
        record = outcomes[name]
        assert record["pgd/correct"].shape == (2, 20) and record["pgd/correct"].dtype == torch.bool
        assert torch.equal(record["clean/correct"], model(images).argmax(1) == labels)
        # one step of ε without random start: PGD's outcomes are FGSM's
        assert torch.equal(record["pgd/correct"], record["fgsm/correct"])
        assert torch.allclose(record["pgd/confidence"], record["fgsm/confidence"])
    zero = attack_outcomes(models, images, labels, AttackSettings(eps=(0.1,), steps=0), batch_size=8)["a"]
    assert torch.equal(zero["pgd/correct"][0], zero["clean/correct"])


V2_CLASSES = ["circle", "triangle", "star", "cross", "ring", "arrow", "heart", "ellipse", "crescent", "trefoil"]


def test_cli_writes_tables_outcomes_and_the_manifest_section(tmp_path, capsys):
    from analysis.attacks.__main__ import main
    from analysis.outcomes import load_outcomes

    meta = {"arch": "resnet20", "num_classes": 10, "input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3,
            "classes": V2_CLASSES, "dataset": "shapes"}
    for method in ("none", "cutmix"):
        for seed in (0, 1):
            torch.manual_seed(10 * seed + len(method))
            save_checkpoint(tmp_path / f"{method}-s{seed}.safetensors", build_model("resnet20", 10).state_dict(),
                            {**meta, "method": method, "seed": seed})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"checkpoints": [], "seeds": {"kept": True}}))
    out = tmp_path / "report"
    result = main(["--checkpoints", str(tmp_path / "*.safetensors"), "--n", "6", "--eps", "2/255,8/255", "--steps",
                   "2", "--restarts", "2", "--n-boot", "100", "--device", "cpu", "--no-progress", "--out", str(out),
                   "--manifest", str(manifest)])
    assert sorted(p.name for p in out.iterdir()) == ["attacks.csv", "attacks.html", "attacks.json",
                                                     "attacks_methods.csv", "attacks_outcomes.safetensors"]
    stored = load_outcomes(out / "attacks_outcomes.safetensors")
    assert stored["none-s0"]["pgd/correct"].shape == (2, 6) and stored["none-s0"]["clean/confidence"].shape == (6,)
    methods = result["methods"]
    assert set(zip(methods["attack"], methods["eps"])) == {("clean", "0"), ("fgsm", "2/255"), ("fgsm", "8/255"),
                                                           ("pgd", "2/255"), ("pgd", "8/255")}
    assert set(methods["accuracy_vs_none"]) <= {*VERDICTS, "baseline"}
    written = json.loads(manifest.read_text())
    assert written["seeds"] == {"kept": True}
    attacks = written["attacks"]
    assert attacks["attack"]["steps"] == 2 and attacks["attack"]["restarts"] == 2 and "2 restarts" in attacks["attack"]["description"]
    assert len(attacks["runs"]) == 4 and set(attacks["runs"][0]["accuracy"]) == {"clean", "fgsm 2/255", "fgsm 8/255",
                                                                                 "pgd 2/255", "pgd 8/255"}
    assert attacks["outcomes"]["file"] == "studies/attacks_outcomes.safetensors"  # kept beside the manifest
    assert (tmp_path / "studies" / "attacks_outcomes.safetensors").is_file()
    assert "PGD L∞" in capsys.readouterr().out


def test_cli_refuses_bad_attack_settings(tmp_path, capsys):
    from analysis.attacks.__main__ import main

    for args, message in ((["--eps", "nan"], "ε must be a finite number in [0, 1]"),
                          (["--steps", "-2"], "steps must be an integer in [0, 1000]"),
                          (["--restarts", "2", "--no-random-start"], "needs a random start")):
        with pytest.raises(SystemExit):
            main(["--checkpoints", str(tmp_path / "x.safetensors"), "--out", str(tmp_path / "o"), *args])
        assert message in capsys.readouterr().err


def test_robustness_cli_runs_pgd_beside_fgsm(tmp_path):
    from analysis.outcomes import load_outcomes
    from analysis.robustness.__main__ import main

    meta = {"arch": "resnet20", "num_classes": 10, "input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3,
            "classes": V2_CLASSES, "dataset": "shapes"}
    for method in ("none", "mixup"):
        for seed in (0, 1):
            torch.manual_seed(7 * seed + len(method))
            save_checkpoint(tmp_path / f"{method}-s{seed}.safetensors", build_model("resnet20", 10).state_dict(),
                            {**meta, "method": method, "seed": seed})
    out = tmp_path / "report"
    result = main(["--checkpoint", str(tmp_path / "*.safetensors"), "--data", "shapes-c", "--n", "6",
                   "--corruptions", "fog", "--severities", "1", "--fgsm-eps", "8/255", "--pgd-eps", "8/255",
                   "--pgd-steps", "1", "--pgd-step-size", "1", "--pgd-no-random-start", "--device", "cpu",
                   "--no-progress", "--out", str(out)])
    report = json.loads((out / "robustness.json").read_text())
    assert "1 steps of α = 1 ε, no random start" in report["pgd_attack"]["description"]
    methods = result["methods"].set_index("method")
    # one step of ε without random start is FGSM: the same per-method accuracies and verdicts
    assert methods["pgd_8_255_mean"].tolist() == pytest.approx(methods["fgsm_8_255_mean"].tolist())
    assert set(methods["pgd_8_255_vs_none"]) <= {*VERDICTS, "baseline"}
    stored = load_outcomes(out / "robustness_outcomes.safetensors")["none-s0"]
    assert torch.equal(stored["pgd/correct"][0], stored["fgsm/correct"][-1])
    assert "PGD beside FGSM" in (out / "robustness.html").read_text()
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(tmp_path / "*.safetensors"), "--pgd-eps", "8/255", "--pgd-restarts", "2",
              "--pgd-no-random-start", "--out", str(out)])


def test_a_model_of_the_wrong_width_is_refused_by_the_study():
    images, labels = _batch(4)
    with pytest.raises(ValueError, match=r"logits \[batch, 10\].*got \(4, 4\)"):
        attack_outcomes({"a": SmallNet()}, images, labels, AttackSettings(eps=(0.1,), steps=1), num_classes=10)
