"""MiAMix as miamix.md states it: the paper's smoothing windows, bounded parameters, masks in [0, 1]."""

import pytest
import torch

import msda
from msda.methods.miamix import MAX_WINDOW, paper_windows


def mix(size, batch=64, seed=0, **params):
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    mixer = msda.Mixer("miamix", num_classes=4, generator=torch.Generator().manual_seed(seed), **params)
    return mixer(images, torch.arange(batch) % 4)


@pytest.mark.parametrize("size, expected", [(64, {5, 7, 11, 13}), (224, {9, 15, 25, 35, 45})])
def test_smoothing_windows_are_the_papers_at_the_sizes_it_names(size, expected):
    # §4.7: [5, 7, 11, 13] for 64 × 64 and [9, 15, 25, 35, 45] for 224 × 224 (before: {19, 25, 39, 47} at 224).
    assert set(paper_windows(size)) == expected
    out = mix(size, batch=48, p_smooth=1.0, methods=("cutmix",), weights=(1.0,))
    drawn = out.details["window"][out.details["smoothed"]]
    assert set(drawn.unique().tolist()) == expected


def test_smoothing_windows_between_and_beyond_the_named_sizes_follow_one_rule():
    assert paper_windows(32) == (3.0, 5.0, 7.0)
    assert paper_windows(96) == (9.0, 11.0, 17.0, 21.0)
    assert paper_windows(160) == (7.0, 11.0, 19.0, 25.0, 33.0)
    for side in range(8, 600, 7):
        windows = paper_windows(side)
        assert all(w % 2 == 1 for w in windows) and list(windows) == sorted(windows)


@pytest.mark.parametrize("windows", [(1e8,), (1e308,), (float("inf"),), (MAX_WINDOW + 2,)])
def test_S3_huge_smoothing_windows_are_refused_before_anything_is_sized(windows):
    with pytest.raises(ValueError, match="windows"):  # at construction: no images, nothing sized yet
        msda.Mixer("miamix", num_classes=4, windows=windows)


def test_W4_average_smoothing_keeps_masks_in_zero_one():
    out = mix(64, batch=64, p_smooth=1.0, smoothing="average")
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert out.details["masks"].min() >= 0


def test_pinned_windows_are_pixels_at_the_working_size():
    out = mix(64, batch=16, p_smooth=1.0, windows=(9, 21), methods=("cutmix",), weights=(1.0,))
    drawn = out.details["window"][out.details["smoothed"]]
    assert set(drawn.unique().tolist()) <= {9.0, 21.0}


def test_the_default_alpha_is_the_papers_table_2():
    info = msda.methods_info()["miamix"]
    assert info.default_alpha == 2.0 and "α = 1" in info.notes  # the conflict with §4.1 is stated
