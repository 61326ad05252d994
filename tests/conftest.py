"""Shared fixtures: a tiny sample data set in the Aff-Wild2 layout, made once per session."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch

from abaw_expr.config import Config
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.synthetic.sample import write_sample
from abaw_expr.training.loop import train


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Frame-index caches go to the test's own folder, never to ~/.cache."""
    monkeypatch.setenv("ABAW_EXPR_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    write_sample(root, train_videos=3, val_videos=2, frames=100, seed=3, workers=0)
    return root


def tiny_config(**changes) -> Config:
    """A config small enough to train on 2 CPU cores in seconds: 32 px, 8-frame windows."""
    config = Config()
    config.data.image_size = 32
    config.data.seq_len = 8
    config.data.stride = 8
    config.data.eval_stride = 4
    config.data.batch_size = 4
    config.data.num_workers = 0
    config.model.backbone_weights = "none"
    config.model.frozen_stages = 3
    config.trainer.epochs = 1
    config.trainer.log_every_n_steps = 1
    for key, value in changes.items():
        section, name = key.split("__")
        setattr(getattr(config, section), name, value)
    return config


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A tiny model's checkpoint, seeded, never trained: for tests of faces and people."""
    from abaw_expr.inference.checkpoint import save_model_checkpoint
    from abaw_expr.training.module import build_model

    torch.manual_seed(0)
    config = tiny_config()
    path = tmp_path_factory.mktemp("untrained") / "model.ckpt"
    save_model_checkpoint(build_model(config), config, path)
    return path


@pytest.fixture(scope="session")
def trained_run(tiny_sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    train(
        tiny_config(),
        tiny_sample / "annotations",
        out,
        images_dir=tiny_sample / "cropped_aligned",
        enable_progress_bar=False,
    )
    return out


class BatchSizeDependent(torch.nn.Module):
    """A backbone whose output for one image depends on the size of the batch it is in, as
    oneDNN's does on an AVX-512 CPU (there in the last bits; here plainly, on every machine).
    ``sizes`` records the batch sizes it was given."""

    def __init__(self, backbone: torch.nn.Module | None = None):
        super().__init__()
        self.backbone, self.sizes = backbone, []

    def forward(self, x):
        self.sizes.append(len(x))
        out = self.backbone(x) if self.backbone is not None else x.flatten(1)[:, :4]
        return out + 0.01 * len(x)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_args() -> list[str]:
    """Headless Chromium on a machine without network or GPU, as root."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]


NO_CHROMIUM = "no Chromium here (.ci/run installs Debian's)"


def pytest_collection_modifyitems(items):
    """Without Chromium, a test that uses ``browser`` is skipped before any of its fixtures is
    made (a trained model, a video), as ``skipif`` would."""
    if CHROMIUM is None:
        for item in items:
            if "browser" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


@pytest.fixture()
def browser_args() -> list[str]:
    """Chromium's flags beyond :func:`chromium_args` for ``browser``: a module overrides this
    fixture to give it more (a fake camera: tests/test_serve_camera.py)."""
    return []


@pytest.fixture()
def browser(browser_args):
    """Headless Chromium for one test, closed after it: ``browser.new_page(viewport=...)``.
    The test is skipped, saying why, without Chromium (above) or Playwright."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra)")
    with playwright.sync_playwright() as p:
        args = chromium_args() + browser_args
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def joint_run(tiny_sample, tmp_path_factory):
    """One model of the three tracks, trained 2 epochs on cached features of the tiny sample:
    ``(root, run)``, with ``root/features`` and ``root/run`` (its ``best.ckpt``). Tests that
    change files beside the checkpoint (AU thresholds) work on a copy."""
    from safetensors.torch import save_file

    from abaw_expr.model import build_backbone
    from abaw_expr.training.extraction import extract

    root = tmp_path_factory.mktemp("joint")
    torch.manual_seed(0)
    weights = root / "backbone.safetensors"
    backbone = build_backbone("none", frozen_stages=5)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    tracks = tiny_sample / "tracks"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABAW_EXPR_CACHE", str(root / "cache"))
        extract(
            tiny_sample / "cropped_aligned",
            tracks,
            root / "features",
            weights=str(weights),
            batch_size=32,
            num_workers=0,
            image_size=32,
        )
        config = tiny_config(model__backbone_weights=str(weights), trainer__epochs=2)
        config.model.tasks = ["expr", "va", "au"]
        run = train(
            config, tracks, root / "run", features_dir=root / "features", enable_progress_bar=False
        )
    return root, run


CPU_EAGER = InferenceSettings(device="cpu", engine="eager")  # serve's tests: no engine choice


def wait_for_job(client, job_id: str, timeout: float = 120) -> dict:
    """A serve job's JSON once it is done or failed; an AssertionError after ``timeout`` s."""
    start = time.time()
    while time.time() - start < timeout:
        job = client.get(f"/api/jobs/{job_id}").get_json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {job}")
