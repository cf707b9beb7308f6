"""The saliency detectors of msda._saliency and SaliencyMix's use of them.

Parity with OpenCV needs ``opencv-contrib-python-headless`` (test-only; those tests skip without it). The
before/after figures of the README come from::

    python -m pytest -q -s tests/test_saliency.py -k agreement
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

import msda
from msda._saliency import fine_grained, peak_fractions, saliency_map, spectral_residual
from msda.methods import saliencymix as saliencymix_module
from msda.methods.saliencymix import saliency_peak, saliencymix_mask

from conftest import make_generator

try:  # test-only dependency: opencv-contrib-python-headless
    import cv2
    HAVE_SALIENCY = hasattr(cv2, "saliency")
except ImportError:
    cv2 = None
    HAVE_SALIENCY = False

needs_opencv = pytest.mark.skipif(
    not HAVE_SALIENCY, reason="opencv-contrib-python-headless (cv2.saliency) is not installed; it is test-only")

PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "moon", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "page", "text", "brick", "grass", "gravel")
# Square crops as (top, left, side) fractions of the shorter side: the whole image, four corners, the centre.
CROPS = ((0.0, 0.0, 1.0), (0.0, 0.0, 0.7), (0.0, 0.3, 0.7), (0.3, 0.0, 0.7), (0.3, 0.3, 0.7), (0.25, 0.25, 0.5))


def _photo(name: str) -> torch.Tensor | None:
    """[3, H, W] uint8 photo from skimage.data (grey ones repeated), or None when it is not on this machine."""
    from skimage import data

    try:
        image = torch.from_numpy(getattr(data, name)().copy())
    except Exception:  # a photo skimage would have to download
        return None
    if image.dtype == torch.bool:
        image = image.to(torch.uint8) * 255
    image = image[..., None].expand(*image.shape, 3) if image.ndim == 2 else image[..., :3]
    return image.permute(2, 0, 1).contiguous()


@functools.lru_cache(maxsize=4)
def photo_crops(size: int, limit: int | None = None) -> torch.Tensor:
    """[N, 3, size, size] float32 holding exact byte levels k / 255: crops of skimage.data photos, resized.

    Cached: callers must not write into it.
    """
    crops = []
    for name in PHOTOS:
        image = _photo(name)
        if image is None:
            continue
        side = min(image.shape[-2:])
        for top, left, fraction in CROPS:
            extent = int(side * fraction)
            y0, x0 = int(side * top), int(side * left)
            crop = image[:, y0:y0 + extent, x0:x0 + extent].float()[None]
            crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                                       align_corners=False).round().clamp(0, 255)[0])
    if not crops:
        pytest.skip("no skimage.data photo on this machine")
    return torch.stack(crops[:limit]) / 255


def opencv_maps(images: torch.Tensor) -> torch.Tensor:
    """OpenCV's fine-grained saliency of each image [N, 3, H, W] (RGB, k / 255): [N, H, W] float32."""
    detector = cv2.saliency.StaticSaliencyFineGrained_create()
    maps = []
    for image in images:
        bgr = (image * 255).round().to(torch.uint8).permute(1, 2, 0).flip(-1).contiguous().numpy()
        ok, saliency = detector.computeSaliency(bgr)
        assert ok
        maps.append(torch.from_numpy(saliency))
    return torch.stack(maps)


def _boxes(centres: tuple[torch.Tensor, torch.Tensor], size: int, lam: float) -> torch.Tensor:
    """[N, H, W] bool: SaliencyMix's box (CutMix's renderer) around each centre at λ."""
    lam = torch.full((centres[0].shape[0],), lam)
    return msda.MASKS["cutmix"](lam, size, size, center_x=centres[0], center_y=centres[1])[:, 0] == 0


def agreement_with_opencv(detectors=("spectral_residual", "fine_grained"), size: int = 224,
                          lam: float = 0.5) -> dict[str, dict]:
    """How SaliencyMix's boxes with each detector agree with those OpenCV's fine-grained detector gives.

    On the crops of :func:`photo_crops` at `size` px, per detector: the box IoU at λ (mean, and the share
    below 0.5) and the distance in pixels between the two peaks (mean). The reference box is centred where
    SaliencyMix's official code centres it: OpenCV's first maximum, pixel (col, row) → (col / W, row / H).
    """
    images = photo_crops(size)
    reference = peak_fractions(opencv_maps(images))
    ref_box = _boxes(reference, size, lam)
    figures = {}
    for detector in detectors:
        ours = saliency_peak(images, detector)
        our_box = _boxes(ours, size, lam)
        iou = (ref_box & our_box).flatten(1).sum(1) / (ref_box | our_box).flatten(1).sum(1)
        distance = torch.hypot((ours[0] - reference[0]) * size, (ours[1] - reference[1]) * size)
        figures[detector] = {"photos": images.shape[0], "mean_iou": iou.mean().item(),
                             "share_iou_below_half": (iou < 0.5).float().mean().item(),
                             "mean_peak_distance_px": distance.mean().item()}
    return figures


# ---------------------------------------------------------------- parity with OpenCV


@needs_opencv
@pytest.mark.parametrize("size", [32, 64, 224])
def test_fine_grained_equals_opencv_on_photos(size):
    # The detector is OpenCV's byte arithmetic step for step, and below 2²⁴ (224² · 255 ≈ 1.3e7) OpenCV's
    # float32 integral image is exact too: so the maps must agree bit for bit, not within a tolerance — and
    # with them the first maximum (ties included) and hence every box.
    images = photo_crops(size)
    assert images.shape[0] >= 20
    ours, reference = fine_grained(images), opencv_maps(images)
    assert torch.equal(ours, reference)
    assert torch.equal(ours.flatten(1).argmax(1), reference.flatten(1).argmax(1))


@needs_opencv
def test_fine_grained_above_two_to_the_24_differs_from_opencv_by_at_most_two_levels():
    # At 300 × 307 the integral passes 2²⁴ and OpenCV's float32 sums round (ours are exact int32): a few
    # pixels move by one or two byte levels. Measured on these crops: ≤ 2 levels, ≤ 0.02 % of pixels.
    images = F.interpolate(photo_crops(224, limit=6), size=(300, 307), mode="bilinear").mul(255).round() / 255
    difference = (fine_grained(images) - opencv_maps(images)).abs()
    assert difference.max() <= 2 / 255 + 1e-6
    assert (difference > 0).float().mean() < 1e-3


@needs_opencv
def test_fine_grained_wraps_like_opencv_when_on_and_off_overlap():
    # A pixel brighter than its near surround and darker than its far one is high in both the on and the
    # off map; 255·(on + off)/max then passes 255 and OpenCV's cast keeps the low byte.
    image = torch.full((1, 1, 128, 128), 200.0)
    image[..., 44:84, 44:84] = 20
    image[..., 62:66, 62:66] = 180
    ours, reference = fine_grained(image / 255), opencv_maps((image / 255).expand(1, 3, 128, 128))
    assert torch.equal(ours, reference)
    assert (ours[0, 62:66, 62:66] < 0.1).any()  # the wrapped centre


@needs_opencv
def test_agreement_with_opencv_before_and_after(capsys):
    """Prints the README's figures: spectral residual (before) and fine-grained (after) against OpenCV."""
    figures = agreement_with_opencv()
    with capsys.disabled():
        for detector, row in figures.items():
            print(f"\n{detector:>17}: {row['photos']} photos at 224 px, λ = 0.5: mean IoU {row['mean_iou']:.3f}, "
                  f"IoU < 0.5 for {row['share_iou_below_half']:.0%}, "
                  f"mean peak distance {row['mean_peak_distance_px']:.1f} px")
    before, after = figures["spectral_residual"], figures["fine_grained"]
    assert before["photos"] >= 60
    assert after == {**after, "mean_iou": 1.0, "share_iou_below_half": 0.0, "mean_peak_distance_px": 0.0}
    assert before["mean_iou"] < 0.9  # the detectors really differ: the fix is visible


# ---------------------------------------------------------------- the detector itself


def test_fine_grained_batched_equals_per_image(device):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 40, 52, generator=g).mul(255).round().div(255).to(device)
    batched = fine_grained(images)
    assert batched.shape == (4, 40, 52) and batched.dtype == torch.float32 and batched.device == images.device
    assert torch.equal(batched, torch.cat([fine_grained(image[None]) for image in images]))


def test_fine_grained_same_on_cpu_and_device(device):
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fine_grained(images.to(device)).cpu(), fine_grained(images))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fine_grained_reads_half_precision_inputs(device, dtype):
    levels = torch.randint(0, 256, (2, 3, 36, 36), generator=torch.Generator().manual_seed(2))
    images = (levels / 255).to(device=device, dtype=dtype)
    out = fine_grained(images)
    assert out.dtype == torch.float32
    assert torch.equal(out, fine_grained(images.float()))
    if dtype == torch.float16:  # float16 keeps every k / 255 within half a level: the map is the exact one
        assert torch.equal(out, fine_grained((levels / 255).to(device)))


def test_fine_grained_grey_and_other_channel_counts(device):
    grey = torch.rand(2, 1, 30, 30, generator=torch.Generator().manual_seed(3)).to(device)
    assert torch.equal(fine_grained(grey), fine_grained(grey.expand(2, 3, 30, 30)))
    assert fine_grained(grey.expand(2, 4, 30, 30)).shape == (2, 30, 30)


def test_fine_grained_keeps_no_graph():
    images = torch.rand(2, 3, 20, 20, requires_grad=True)
    assert not fine_grained(images).requires_grad


def test_fine_grained_flat_image_gives_a_zero_map(device):
    out = fine_grained(torch.full((2, 3, 20, 20), 0.4, device=device))
    assert torch.equal(out, torch.zeros_like(out))


def test_fine_grained_peak_finds_a_bright_patch(device):
    images = 0.5 + 0.01 * torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    images[0, :, 28:34, 36:42] = 1.0
    images[1, :, 40:46, 20:26] = 0.0  # a dark patch: the off-centre response
    cx, cy = saliency_peak(images.to(device))
    found = torch.stack([cx, cy], 1).cpu() * 64
    assert (found - torch.tensor([[39.0, 31.0], [23.0, 43.0]])).abs().max() <= 3


def test_spectral_residual_is_kept(device):
    images = torch.rand(2, 3, 50, 50, generator=torch.Generator().manual_seed(5)).to(device)
    out = saliency_map(images, "spectral_residual", size=32)
    assert out.shape == (2, 32, 32) and torch.equal(out, spectral_residual(images, 32))
    cx, cy = saliency_peak(images, "spectral_residual", size=32)
    column, row = peak_fractions(out)
    assert torch.equal(cx, column + 0.5 / 32) and torch.equal(cy, row + 0.5 / 32)


def test_peak_is_the_first_maximum_in_row_major_order():
    saliency = torch.zeros(1, 4, 5)
    saliency[0, 1, 3] = saliency[0, 2, 0] = 1.0
    column, row = peak_fractions(saliency)
    assert torch.equal(column, torch.tensor([3 / 5])) and torch.equal(row, torch.tensor([1 / 4]))


# ---------------------------------------------------------------- SaliencyMix


def _batch(device):
    images = 0.5 + 0.02 * torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    images[:, :, 10:16, 18:24] = 1.0
    return images.clamp(0, 1).to(device), torch.arange(4, device=device)


def test_saliencymix_defaults_to_fine_grained(device):
    images, labels = _batch(device)
    out = msda.Mixer("saliencymix", num_classes=4, generator=make_generator(device))(images, labels, lam=0.6)
    cx, cy = saliency_peak(images[out.partner], "fine_grained")
    assert torch.equal(out.details["peak"], torch.stack([cx, cy], 1))
    assert msda.methods_info()["saliencymix"].param("saliency").default == "fine_grained"


@pytest.mark.parametrize("bad", ["opencv", "FINE_GRAINED", 3, None])
def test_saliencymix_rejects_an_unknown_detector(bad):
    images, labels = _batch("cpu")
    with pytest.raises(ValueError, match="saliency") as error:
        msda.Mixer("saliencymix", num_classes=4, saliency=bad)(images, labels)
    if isinstance(bad, str):
        assert bad in str(error.value) and "fine_grained" in str(error.value)
    with pytest.raises(ValueError, match="saliency"):
        saliencymix_mask(torch.full((4,), 0.5), images, saliency="opencv")
    with pytest.raises(ValueError, match="saliency must be one of 'fine_grained', 'spectral_residual'; got 'opencv'"):
        saliency_peak(images, "opencv")


def test_saliencymix_pinned_centres_override_the_detector(device, monkeypatch):
    images, labels = _batch(device)

    def no_detector(*args, **kwargs):
        raise AssertionError("the detector ran although both centres were pinned")

    monkeypatch.setattr(saliencymix_module, "saliency_map", no_detector)
    out = msda.Mixer("saliencymix", num_classes=4, center_x=0.25, center_y=0.75,
                     generator=make_generator(device))(images, labels, lam=0.5)
    lam = torch.full((4,), 0.5, device=device)
    assert torch.equal(out.mask, msda.MASKS["cutmix"](lam, 32, 32, center_x=0.25, center_y=0.75))
    assert torch.equal(saliencymix_mask(lam, images, center_x=0.25, center_y=0.75), out.mask)


def test_saliencymix_one_pinned_centre_keeps_the_other_from_the_peak(device):
    images, labels = _batch(device)
    out = msda.Mixer("saliencymix", num_classes=4, center_x=0.1, generator=make_generator(device))(
        images, labels, lam=0.5)
    _, peak_y = saliency_peak(images[out.partner])
    assert torch.equal(out.details["peak"][:, 1], peak_y)
    assert (out.details["peak"][:, 0] == 0.1).all()


def test_saliencymix_replays_from_its_peak(device):
    images, labels = _batch(device)
    images[2:, :, 10:16, 18:24] = 0.5  # two partners with another peak
    first = msda.Mixer("saliencymix", num_classes=4, generator=make_generator(device))(images, labels)
    peak = first.details["peak"]
    again = msda.Mixer("saliencymix", num_classes=4, center_x=peak[:, 0], center_y=peak[:, 1],
                       generator=make_generator(device))(images, labels)
    assert torch.equal(again.mask, first.mask) and torch.equal(again.images, first.images)


def test_saliencymix_mask_matches_the_mixer(device):
    images, labels = _batch(device)
    out = msda.Mixer("saliencymix", num_classes=4, generator=make_generator(device))(images, labels, lam=0.7)
    lam = torch.full((4,), 0.7, device=device)
    assert torch.equal(saliencymix_mask(lam, images[out.partner]), out.mask)
    assert torch.equal(saliencymix_mask(lam, images[out.partner], saliency="spectral_residual"),
                       msda.Mixer("saliencymix", num_classes=4, saliency="spectral_residual",
                                  generator=make_generator(device))(images, labels, lam=0.7).mask)


def test_saliencymix_params_replay_the_mix_without_the_detector(device, monkeypatch):
    images, labels = _batch(device)
    mixer = msda.Mixer("saliencymix", num_classes=4, generator=make_generator(device))
    first = mixer(images, labels)
    assert first.params["saliency"] == "fine_grained"
    assert torch.equal(torch.stack([first.params["center_x"], first.params["center_y"]], 1), first.details["peak"])
    monkeypatch.setattr(saliencymix_module, "saliency_map", lambda *a, **k: pytest.fail("detector ran on replay"))
    again = mixer(images, labels, params=first.params)
    assert torch.equal(again.mask, first.mask) and torch.equal(again.images, first.images)
