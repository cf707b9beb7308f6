"""Adversarial attacks beyond one-step FGSM: L∞ PGD with steps, step size, random starts and restarts
(Madry et al., ICLR 2018, arXiv:1706.06083), and a study of clean, FGSM and PGD accuracy with every image's
outcome kept for :func:`analysis.stats.compare`.

    from analysis.attacks import pgd
    adversarial = pgd(model, images, labels, 8 / 255, steps=10, restarts=1, generator=g)

    python -m analysis.attacks --checkpoints 'checkpoints/seeds/*.safetensors' --n 300 --out reports/attacks
"""

from .pgd import MAX_RESTARTS, MAX_STEPS, check_eps, pgd
from .study import AttackSettings, attack_outcomes, attack_seed, eps_label, parse_eps

__all__ = ["AttackSettings", "MAX_RESTARTS", "MAX_STEPS", "attack_outcomes", "attack_seed", "check_eps", "eps_label",
           "parse_eps", "pgd"]
