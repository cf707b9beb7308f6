"""How long the Mask Explorer's server side takes to redraw every method card, without a browser.

    python -m app.lib.benchmark            # from the repository root

For the default pair at 224 × 224 it times, per redraw, what the page does for each of the 14 cards: mix the
batch [A, B] with msda, compute the mask statistics and encode the mixed image and the coloured mask as PNG
(:func:`app.lib.mixing.mix_view`), and write the card's picture HTML. Two cases: a new seed (every card mixes
again) and a new λ (the cards that ignore λ come from the cache). Wall-clock and CPU time are reported;
on a machine shared with other work the wall-clock time is the larger.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import msda

from . import examples
from .cards import UNUSED_LAM, lam_applies, pictures_html
from .images import fit_square
from .mixing import mix_view

SIZE = 224
REPEATS = 7


def _pair(size: int) -> torch.Tensor:
    pixels = [fit_square(examples.load_photo(name).pixels, size) for name in ("astronaut", "chelsea")]
    return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0


def _draw_card(method: str, images: torch.Tensor, lam: float, seed: int) -> None:
    view = mix_view(method, images, lam=lam, alpha=1.0, seed=seed, params={})
    pictures_html(view, images.shape[-1])


def redraw(images: torch.Tensor, lam: float, seed: int, methods: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to draw the cards of ``methods``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for method in methods:
        _draw_card(method, images, lam, seed)
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> None:
    torch.set_num_threads(1)  # as the app does
    images = _pair(SIZE)
    infos = msda.methods_info()
    using_lam = [name for name in msda.METHODS if lam_applies(infos[name], {})]
    redraw(images, 0.5, 0, list(msda.METHODS))  # warm-up: first calls allocate and compile kernels
    cases = {"new seed (all 14 cards mix again)": list(msda.METHODS),
             f"new λ ({len(using_lam)} cards mix again, {len(msda.METHODS) - len(using_lam)} cached)": using_lam}
    print(f"Mask Explorer server-side redraw at {SIZE} × {SIZE}, median of {REPEATS}, torch threads 1")
    for name, methods in cases.items():
        runs = [redraw(images, 0.3 + 0.01 * index, index + 1, methods) for index in range(REPEATS)]
        print(f"  {name}: wall {statistics.median(w for w, _ in runs) * 1000:.0f} ms, "
              f"CPU {statistics.median(c for _, c in runs) * 1000:.0f} ms")
    per_method = {}
    for method in msda.METHODS:
        runs = [redraw(images, UNUSED_LAM + 0.01 * index, index + 1, [method]) for index in range(REPEATS)]
        per_method[method] = statistics.median(c for _, c in runs) * 1000
    print("  CPU per card (ms): " + ", ".join(f"{name} {ms:.0f}" for name, ms in per_method.items()))


if __name__ == "__main__":
    main()
