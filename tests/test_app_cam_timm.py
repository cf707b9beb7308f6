"""The CAM page with a timm training checkpoint in the checkpoint folder (what ImageNet-size models, too big for
the 20 MB upload cap, go through): it is listed (``.pth.tar``), explained at 224 px by its family's CAM layer,
another layer can be picked per model, and the uploader says where larger files go."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

timm = pytest.importorskip("timm")
from timm.utils import CheckpointSaver  # noqa: E402

from app.lib.checkpoints import ENV_VAR, UPLOAD_CAP_MB, list_shipped  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "1_CAM_and_Occlusion.py"
NAME = "mobilenetv3_small_050"  # the smallest timm family member here: the page runs ~40 passes at 224 px


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("timm-run")
    torch.manual_seed(0)  # test fixture: random weights (nothing can be downloaded)
    net = timm.create_model(NAME, pretrained=False, num_classes=10)
    saver = CheckpointSaver(net, torch.optim.SGD(net.parameters(), lr=0.1), checkpoint_dir=str(run),
                            recovery_dir=str(run),
                            args=argparse.Namespace(model=NAME, num_classes=10, img_size=None, input_size=None,
                                                    mean=None, std=None))
    saver.save_checkpoint(epoch=0, metric=0.1)
    folder = tmp_path_factory.mktemp("checkpoints")
    shutil.copy(run / "last.pth.tar", folder / "mobilenet-timm.pth.tar")
    return folder


def test_timm_train_checkpoints_are_listed(folder):
    shipped, note = list_shipped(folder)
    assert [entry.path.name for entry in shipped] == ["mobilenet-timm.pth.tar"] and note is None


def test_a_timm_checkpoint_from_the_folder_is_explained_and_its_layer_can_be_changed(monkeypatch, folder):
    monkeypatch.setenv(ENV_VAR, str(folder))
    at = AppTest.from_file(str(PAGE), default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    card = at.get_by_key("model-0")
    text = "\n".join([m.value for m in card.markdown] + [c.value for c in card.caption])
    assert f"timm/{NAME} · 224 px · 10 classes" in text and "prediction: **class" in text, text
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert f"up to {UPLOAD_CAP_MB} MB" in captions and str(folder) in captions and ENV_VAR in captions

    menu = next(box for box in at.sidebar.selectbox if box.label == "mobilenet-timm.pth")
    assert menu.value == "automatic (blocks.5)"
    menu.set_value("blocks.4").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    card = at.get_by_key("model-0")
    assert "CAM layer blocks.4" in " ".join(c.value for c in card.caption)
