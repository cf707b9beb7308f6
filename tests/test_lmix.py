"""LMix as this project reads lmix.txt §3: the high boost of eq. (5) acts on the mask's spectrum; the mixed image
is eq. (1) unless ``sharpen_image=True``."""

import pytest
import torch

import msda
from msda._fourier import frequency_radius, high_pass, sharpen
from msda.stats import connected_regions


def test_lmix_mask_without_sharpening_is_fmix_bit_for_bit(device):
    lam = torch.rand(64, generator=torch.Generator().manual_seed(0)).to(device)
    for size in ((32, 32), (17, 40)):
        fmix = msda.MASKS["fmix"](lam, *size, generator=torch.Generator(device).manual_seed(5))
        lmix = msda.MASKS["lmix"](lam, *size, generator=torch.Generator(device).manual_seed(5), sharpen=0.0)
        assert torch.equal(fmix, lmix)


@pytest.mark.parametrize("size", [32, 224])
def test_lmix_masks_have_more_partner_regions_than_fmix(size):
    n = 400 if size == 32 else 100
    lam = torch.full((n,), 0.5)
    fmix = msda.MASKS["fmix"](lam, size, size, generator=torch.Generator().manual_seed(1))
    lmix = msda.MASKS["lmix"](lam, size, size, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fmix.mean((1, 2, 3)), lmix.mean((1, 2, 3)))  # same λ: exact top-round(λHW)
    fmix_regions = connected_regions(fmix).float().mean()
    lmix_regions = connected_regions(lmix).float().mean()
    # Measured (n = 1 000): 2.11 → 2.52 regions at 32 px, 2.22 → 2.64 at 224 px.
    assert lmix_regions > 1.1 * fmix_regions


def test_lmix_regions_grow_with_the_sharpening_strength():
    lam = torch.full((300,), 0.5)
    counts = [connected_regions(msda.MASKS["lmix"](lam, 32, 32, generator=torch.Generator().manual_seed(2),
                                                   sharpen=k)).float().mean() for k in (0.0, 1.0, 4.0)]
    assert counts[0] < counts[1] < counts[2]


def test_lmix_mixed_image_is_the_plain_mask_mix(device):
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    out = msda.Mixer("lmix", num_classes=2, generator=torch.Generator(device).manual_seed(0))(
        images, torch.arange(8, device=device) % 2)
    expected = out.mask * images + (1 - out.mask) * images[out.partner]
    assert torch.allclose(out.images, expected, atol=1e-6)
    assert out.images.min() >= 0 and out.images.max() <= 1  # no contrast doubling (was 28 % outside [0, 1])


def test_sharpen_image_keeps_the_mean_and_range_and_gain_rises_with_frequency(device):
    # A low-amplitude texture around 0.5 in images whose range is [0, 1] (one black and one white pixel): the
    # boosted texture is never clamped, so the mean is kept up to what clamping the two extremes moves.
    g = torch.Generator().manual_seed(0)
    images = 0.5 + 0.05 * torch.randn(2, 3, 64, 64, generator=g)
    images[..., 0, 0], images[..., 32, 32] = 0.0, 1.0
    images = images.to(device)
    gain, cutoff = torch.full((2,), 1.0, device=device), torch.full((2,), 0.15, device=device)
    sharp = sharpen(images, gain, cutoff)
    assert torch.allclose(sharp.mean((2, 3)), images.mean((2, 3)), atol=2e-4)
    # The response is 1 at DC, rises with the radial frequency and stays below 1 + gain ...
    response = high_pass(torch.tensor([0.15]), 64, 64)[0].flatten()
    by_radius = frequency_radius(64, 64, torch.device("cpu")).flatten().argsort()
    assert response[0] == 0 and bool((response[by_radius].diff() >= -1e-7).all()) and response.max() <= 1
    # ... and that is what happens to a cosine: the lowest frequency passes, a high one is boosted.
    x = torch.arange(64, dtype=torch.float32)
    for cycles in (1, 24):
        wave = 0.5 + 0.1 * torch.cos(2 * torch.pi * cycles * x / 64).expand(1, 1, 64, 64).clone()
        wave[..., 0, 0], wave[..., 32, 32] = 0.0, 1.0  # the range is [0, 1]: the wave is never clamped
        out = sharpen(wave.to(device), gain[:1], cutoff[:1]).cpu()
        amplitude = lambda im: torch.fft.rfft2(im[0, 0]).abs()[0, cycles]
        expected = 1 + response.view(64, 33)[0, cycles]
        assert abs(amplitude(out) / amplitude(wave) - expected) < 0.02
    # Values stay in each input's range, even for a high-contrast image that the boost would overshoot.
    edges = torch.zeros(1, 1, 32, 32, device=device)
    edges[..., 8:24, 8:24] = 1.0
    boosted = sharpen(edges, torch.full((1,), 4.0, device=device), torch.full((1,), 0.1, device=device))
    assert boosted.min() >= 0 and boosted.max() <= 1


def test_sharpen_image_option_sharpens_the_mixed_image(device):
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)).to(device)
    labels = torch.arange(4, device=device) % 2
    plain = msda.Mixer("lmix", num_classes=2, generator=torch.Generator(device).manual_seed(0))(images, labels)
    sharp = msda.Mixer("lmix", num_classes=2, sharpen_image=True,
                       generator=torch.Generator(device).manual_seed(0))(images, labels)
    assert torch.equal(plain.mask, sharp.mask) and torch.equal(plain.lam, sharp.lam)
    detail = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()
    assert detail(sharp.images) > 1.1 * detail(plain.images)


@pytest.mark.parametrize("bad", [{"sharpen_image": 1}, {"image_gain": -1.0}, {"image_cutoff": 0.0},
                                 {"image_cutoff": 0.9}, {"sharpen": float("nan")}])
def test_lmix_rejects_bad_settings(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        msda.Mixer("lmix", num_classes=2, **bad)
