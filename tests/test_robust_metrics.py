"""Robustness metrics (analysis.robust_metrics): CE/mCE/relative mCE against hand computation on a fake
results table, the published AlexNet table, FGSM on a tiny trained model, and the accuracy helper."""

from __future__ import annotations

import pytest
import torch
from conftest import make_generator
from torch import nn

from analysis.corruptions import BENCHMARK_CORRUPTIONS, CORRUPTIONS
from analysis.robust_metrics import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    ALEXNET_ERRORS_BY_SEVERITY,
    corruption_errors,
    evaluate_accuracy,
    fgsm,
    group_accuracies,
    mce,
    mean_corrupted_accuracy,
    relative_corruption_errors,
    relative_mce,
)


def fake_table() -> dict[str, list[float]]:
    """Corruption k (paper order) has errors 0.10 + 0.02·k + 0.01·(s − 1) at severity s."""
    return {name: [0.10 + 0.02 * k + 0.01 * s for s in range(5)] for k, name in enumerate(CORRUPTIONS)}


def test_alexnet_table():
    assert list(ALEXNET_ERRORS) == list(CORRUPTIONS) and ALEXNET_CLEAN_ERROR == 0.4348
    assert ALEXNET_ERRORS["gaussian_noise"] == 0.886428 and ALEXNET_ERRORS["saturate"] == 0.658248
    for name, per_severity in ALEXNET_ERRORS_BY_SEVERITY.items():
        # The published averages are the means of the published per-severity errors.
        assert abs(sum(per_severity) / 5 - ALEXNET_ERRORS[name]) < 1e-6, name


def test_mce_by_hand():
    table = fake_table()
    ce = corruption_errors(table)
    # Row k sums to 5·(0.10 + 0.02k) + 0.10.
    by_hand = {name: (5 * (0.10 + 0.02 * k) + 0.10) / (5 * ALEXNET_ERRORS[name])
               for k, name in enumerate(CORRUPTIONS)}
    for name in CORRUPTIONS:
        assert abs(float(ce[name]) - by_hand[name]) < 1e-12
    assert abs(float(mce(table)) - sum(by_hand[n] for n in BENCHMARK_CORRUPTIONS) / 15) < 1e-12
    assert abs(float(ce["gaussian_noise"]) - 0.60 / (5 * 0.886428)) < 1e-12
    # A model as bad as AlexNet at every severity has mCE exactly 1.
    alexnet = {name: list(rows) for name, rows in ALEXNET_ERRORS_BY_SEVERITY.items()}
    assert abs(float(mce(alexnet)) - 1.0) < 1e-6


def test_relative_mce_by_hand():
    table, clean = fake_table(), 0.08
    relative = relative_corruption_errors(table, clean)
    by_hand = {name: (5 * (0.10 + 0.02 * k) + 0.10 - 5 * clean) / (5 * (ALEXNET_ERRORS[name] - 0.4348))
               for k, name in enumerate(CORRUPTIONS)}
    for name in CORRUPTIONS:
        assert abs(float(relative[name]) - by_hand[name]) < 1e-12
    assert abs(float(relative_mce(table, clean)) - sum(by_hand[n] for n in BENCHMARK_CORRUPTIONS) / 15) < 1e-12


def test_accuracies_by_hand():
    table = fake_table()
    mean_error_15 = sum(0.10 + 0.02 * k + 0.02 for k in range(15)) / 15
    mean_error_19 = sum(0.10 + 0.02 * k + 0.02 for k in range(19)) / 19
    assert abs(float(mean_corrupted_accuracy(table)) - (1 - mean_error_15)) < 1e-12
    assert abs(float(mean_corrupted_accuracy(table, corruptions=CORRUPTIONS)) - (1 - mean_error_19)) < 1e-12
    groups = group_accuracies(table)
    assert list(groups) == ["noise", "blur", "weather", "digital", "extra"]
    assert abs(float(groups["noise"]) - (1 - (0.12 + 0.14 + 0.16) / 3)) < 1e-12
    assert abs(float(groups["extra"]) - (1 - sum(0.12 + 0.02 * k for k in range(15, 19)) / 4)) < 1e-12
    as_tensor = torch.tensor([table[name] for name in CORRUPTIONS], dtype=torch.float64)
    assert torch.allclose(mce(as_tensor), mce(table))
    only_benchmark = {name: table[name] for name in BENCHMARK_CORRUPTIONS}
    assert set(group_accuracies(only_benchmark)) == {"noise", "blur", "weather", "digital"}


def test_metric_arguments():
    table = fake_table()
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        mce({**table, "rain": [0.1] * 5})
    with pytest.raises(ValueError, match="must hold 5 errors"):
        mce({**table, "fog": [0.1] * 4})
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\]"):
        mce({**table, "fog": [10, 20, 30, 40, 50]})
    with pytest.raises(ValueError, match="needs errors for gaussian_noise"):
        mce({name: rows for name, rows in table.items() if name != "gaussian_noise"})
    with pytest.raises(ValueError, match=r"shape \[15, 5\] or \[19, 5\]"):
        mce(torch.zeros(14, 5))
    with pytest.raises(ValueError, match="clean_error must be in"):
        relative_mce(table, 1.5)


# --------------------------------------------------------------------------------------------- FGSM


def separable_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, 3, 8, 8] images in [0, 1]: class 1 is brighter in the left half, class 0 in the right half, by a
    margin U(0.02, 0.3) per image, so that small steps ε already flip the closest images."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    images = 0.35 + 0.1 * torch.rand((n, 3, 8, 8), generator=generator)
    margin = 0.02 + 0.28 * torch.rand(n, generator=generator)
    bright = torch.where(labels.bool(), 0, 4)
    columns = torch.arange(8)[None, :] - bright[:, None]
    half = ((columns >= 0) & (columns < 4)).float()[:, None, None, :]
    return (images + margin[:, None, None, None] * half).clamp(0, 1), labels


def trained_model(device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)  # parameter initialisation in the test, not in the library
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 16), nn.ReLU(), nn.Linear(16, 2)).to(device)
    images, labels = separable_data(256, make_generator("cpu", 0))
    images, labels = images.to(device), labels.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()
    return model, images, labels


def accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def test_fgsm_lowers_accuracy(device):
    model, images, labels = trained_model(device)
    clean = accuracy(model, images, labels)
    assert clean > 0.95
    scores = [accuracy(model, fgsm(model, images, labels, eps), labels) for eps in (0.01, 0.03, 0.1, 0.25)]
    assert clean > scores[0] > scores[1] > scores[2] > scores[3] and scores[3] < 0.5, (clean, scores)
    adversarial = fgsm(model, images, labels, 0.06)
    assert adversarial.min() >= 0 and adversarial.max() <= 1 and adversarial.shape == images.shape
    assert (adversarial - images).abs().max() <= 0.06 + 1e-6


def test_fgsm_eps_zero_and_state_restored(device):
    model, images, labels = trained_model(device)
    model.train()
    model[1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    assert torch.equal(fgsm(model, images, labels, 0.0), images)
    out = fgsm(model, images, labels, 0.1, normalize=lambda x: (x - 0.5) / 0.25)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())  # the attack leaves no parameter gradients
    assert not out.requires_grad and not torch.equal(out, images)
    half = fgsm(model, images.half(), labels, 0.1)
    assert half.dtype == torch.float16
    with pytest.raises(ValueError, match="eps must be in"):
        fgsm(model, images, labels, -0.1)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        fgsm(model, images, labels.float(), 0.1)


def test_evaluate_accuracy(device):
    model, images, labels = trained_model(device)
    batches = [(images[i:i + 64].cpu(), labels[i:i + 64].cpu()) for i in range(0, 256, 64)]
    correct, total = evaluate_accuracy(model, batches, device=device)
    assert total.item() == 256 and correct.device.type == torch.device(device).type
    assert correct.item() == round(accuracy(model, images, labels) * 256)
    noisy, _ = evaluate_accuracy(model, batches, device=device, corruption="gaussian_noise", severity=5,
                                 generator=make_generator(device, 1), profile="imagenet")
    attacked, _ = evaluate_accuracy(model, batches, device=device, fgsm_eps=0.15)
    assert attacked.item() < correct.item() and noisy.item() <= correct.item()
    with pytest.raises(ValueError, match="corruption and severity go together"):
        evaluate_accuracy(model, batches, device=device, corruption="fog")
