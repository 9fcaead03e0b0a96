"""Predictor: the preset's test resize, results at the original size, batching, bad files, weights and
class names. Demo preset with seeded random weights at a small test size, on real photos."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskdino import build_model, get_config
from maskdino.checkpoints import CheckpointMismatchError
from maskdino.checkpoints.native import save_weights
from maskdino.checkpoints.official import PREFIX_MOVES
from maskdino.config import Config
from maskdino.predictor import Predictor, dataset_info

DATA = Path(__file__).resolve().parent / "data"
ASTRONAUT = DATA / "astronaut.png"
COCO_IMAGES = sorted((DATA / "pipeline" / "coco").glob("*.jpg"))
SMALL_TEST_SIZE = ["input.min_size_test=128", "input.max_size_test=192"]


def demo_config(*overrides: str) -> Config:
    return get_config("demo", [*SMALL_TEST_SIZE, *overrides])


def save_demo_weights(path: Path, cfg: Config | None = None, seed: int = 0) -> Path:
    """Seeded random demo weights (test size 128/192 stored in the config) as our .safetensors."""
    cfg = cfg or demo_config()
    torch.manual_seed(seed)
    return save_weights(path, build_model(cfg), cfg)


def official_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our parameter names -> the official detectron2 names (inverse of the conversion's prefix moves)."""
    out = {}
    for name, tensor in state.items():
        ours, official = next((new, old) for old, new in PREFIX_MOVES if name.startswith(new))
        out[official + name[len(ours) :]] = tensor
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_demo_weights(tmp_path_factory.mktemp("weights") / "demo.safetensors")


@pytest.fixture(scope="module")
def predictor(weights) -> Predictor:
    return Predictor(weights=weights, top_k=20)


def test_results_at_original_size_equal_the_model_on_the_resized_image(predictor):
    image = np.asarray(Image.open(COCO_IMAGES[0]).convert("RGB"))  # 352x230 -> 192x125 (long side cap)
    result = predictor(COCO_IMAGES[0])
    assert (
        predictor.cfg.name == "demo" and predictor.cfg.input.min_size_test == 128
    )  # config from the weights
    assert result["masks"].shape == (20, 230, 352) and result["masks"].dtype == torch.bool
    assert result["boxes"].shape == (20, 4) and torch.all(result["scores"][:-1] >= result["scores"][1:])
    resized = torch.from_numpy(np.array(Image.fromarray(image).resize((192, 125), Image.BILINEAR)))
    with torch.no_grad():
        expected = predictor.model(
            [resized.permute(2, 0, 1).float() / 255], output_sizes=[(230, 352)], top_k=20
        )[0]
    for key in ("boxes", "labels", "scores", "masks"):
        assert torch.equal(result[key], expected[key]), key
    from_array = predictor(image)
    assert torch.equal(from_array["masks"], result["masks"]) and torch.equal(
        from_array["scores"], result["scores"]
    )


def test_test_resize_short_side_then_long_side_cap(predictor):
    assert tuple(predictor.resize(np.zeros((480, 640, 3), np.uint8)).shape) == (3, 128, 171)
    assert tuple(predictor.resize(np.zeros((900, 300, 3), np.uint8)).shape) == (3, 192, 64)
    with pytest.raises(ValueError, match=r"2000x20 image becomes 192x2 .* >= 32 px"):
        predictor.resize(np.zeros((20, 2000, 3), np.uint8))


def test_score_threshold_and_top_k(weights, predictor):
    everything = predictor(ASTRONAUT)
    threshold = float(everything["scores"].median())
    filtered = Predictor(weights=weights, score_threshold=threshold, top_k=5)(ASTRONAUT)
    assert 1 <= len(filtered["scores"]) <= 5 and bool((filtered["scores"] >= threshold).all())
    assert filtered["masks"].shape[0] == len(filtered["labels"]) == len(filtered["boxes"])
    with pytest.raises(ValueError, match="top_k=0"):
        Predictor(weights=weights, top_k=0)


def test_top_k_is_an_option_of_the_predictor_not_of_the_shared_config(weights):
    cfg = demo_config()
    many = Predictor(cfg, weights, top_k=150)
    assert len(many(ASTRONAUT)["scores"]) == 150  # more than the configured 100: post-processing's own k
    assert cfg.model.test.detections_per_image == many.cfg.model.test.detections_per_image == 100


def test_top_k_of_a_mimdet_model(predictor):
    """MIMDet's Mask R-CNN honours the same post-processing option (more or fewer than its configured 100)."""
    from tests.mimdet.tiny import tiny_config

    cfg = tiny_config("model.mask_rcnn.score_thresh=0.0", "model.mask_rcnn.rpn_post_nms_top_n_test=300")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    image = predictor.resize(np.asarray(Image.open(COCO_IMAGES[0]).convert("RGB")))
    with torch.no_grad():
        default, three, more = (model([image], top_k=k)[0] for k in (None, 3, 150))
    assert len(default["scores"]) == 100 and len(three["scores"]) == 3 and len(more["scores"]) == 150
    assert torch.equal(three["scores"], default["scores"][:3])  # the best three
    assert model.roi_heads.detections_per_img == cfg.model.test.detections_per_image == 100


def assert_same_instances(ours: dict, alone: dict, where) -> None:
    """The issue's tolerances: same instances, scores within 1e-4, boxes within 0.05 px."""
    assert torch.equal(ours["labels"], alone["labels"]), where
    torch.testing.assert_close(ours["scores"], alone["scores"], atol=1e-4, rtol=0)
    torch.testing.assert_close(ours["boxes"], alone["boxes"], atol=0.05, rtol=0)


def network_batch_sizes(model) -> list[int]:
    """Records the batch size of every backbone call of `model`."""
    sizes: list[int] = []
    model.backbone.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    return sizes


def test_a_batch_gives_each_image_its_own_result(predictor):
    """Landscape, portrait and square photos in one batch, plus one that pads to the first one's size:
    each result equals the image predicted alone, masks included (padding to the batch's largest size
    would change them)."""
    paths = [COCO_IMAGES[0], COCO_IMAGES[2], ASTRONAUT, COCO_IMAGES[1]]
    sizes = [tuple(predictor.resize(np.asarray(Image.open(p).convert("RGB"))).shape[1:]) for p in paths]
    assert sizes == [(125, 192), (171, 128), (128, 128), (128, 171)]  # padded: 128x192, 192x128, 128x128
    batched = [item.result for item in predictor.predict_paths(paths, batch_size=4)]
    for path, ours in zip(paths, batched):
        alone = predictor(path)
        assert_same_instances(ours, alone, path)
        assert torch.equal(ours["masks"], alone["masks"]), path


def test_grouped_batching_shares_a_pass_between_images_of_one_padded_size(weights, predictor):
    grouped = Predictor(weights=weights, top_k=20, batching="grouped")
    passes = network_batch_sizes(grouped.model)
    paths = [COCO_IMAGES[0], COCO_IMAGES[2], COCO_IMAGES[1]]  # 125x192 and 128x171 both pad to 128x192
    batched = [item.result for item in grouped.predict_paths(paths, batch_size=3)]
    assert passes == [2, 1]
    for path, ours in zip(paths, batched):
        alone = predictor(path)
        assert_same_instances(ours, alone, path)
        # equal to float rounding: only pixels whose mask logit is within ~1e-5 of 0 may flip
        assert (ours["masks"] != alone["masks"]).float().mean() < 1e-4, path
    with pytest.raises(ValueError, match="batching='padded'; expected one of"):
        Predictor(weights=weights, batching="padded")


def test_a_mimdet_batch_gives_each_image_its_own_result():
    """MIMDet pads a batch to its largest image: the predictor runs its images one per call."""
    from tests.mimdet.tiny import tiny_config

    cfg = tiny_config("model.mask_rcnn.score_thresh=0.0", *SMALL_TEST_SIZE)
    torch.manual_seed(0)
    mimdet = Predictor(cfg, top_k=10)
    paths = [COCO_IMAGES[0], COCO_IMAGES[2]]  # landscape, portrait
    batched = [item.result for item in mimdet.predict_paths(paths, batch_size=2)]
    for path, ours in zip(paths, batched):
        alone = mimdet(path)
        assert len(ours["scores"]) == 10
        assert_same_instances(ours, alone, path)
        assert torch.equal(ours["masks"], alone["masks"]), path
    with pytest.raises(ValueError, match="batching='grouped' is an option of Mask DINO models"):
        Predictor(cfg, batching="grouped")


def test_batches_keep_order_and_bad_files_are_reported(tmp_path, predictor):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(COCO_IMAGES[1].read_bytes()[:2000])
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is text, not a JPEG\n")
    paths = [COCO_IMAGES[0], truncated, ASTRONAUT, not_an_image, tmp_path / "missing.png"]
    items = list(predictor.predict_paths(paths, batch_size=2))
    assert [item.source for item in items] == [str(p) for p in paths]
    assert [item.error is None for item in items] == [True, False, True, False, False]
    assert "truncated.jpg" in items[1].error and "notes.jpg" in items[3].error
    assert "not found" in items[4].error
    assert items[0].result["masks"].shape[1:] == (230, 352)
    assert items[2].result["masks"].shape[1:] == (512, 512)


def test_grayscale_rgba_16bit_and_exif_inputs_are_converted_with_notes(tmp_path, predictor):
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((96, 64)))
    gray = tmp_path / "gray.png"
    Image.fromarray(rgb).convert("L").save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(rgb).convert("RGBA").save(rgba)
    deep = tmp_path / "deep.png"
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(deep)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[274] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.fromarray(rgb).save(rotated, exif=exif)
    items = {Path(i.source).stem: i for i in predictor.predict_paths([gray, rgba, deep, rotated])}
    assert all(i.error is None for i in items.values())
    assert "grayscale" in " ".join(items["gray"].notes) and "alpha" in " ".join(items["rgba"].notes)
    assert "16-bit" in " ".join(items["deep"].notes) and "EXIF orientation 6" in " ".join(
        items["rotated"].notes
    )
    assert items["rotated"].image.shape == (96, 64, 3) and items["rotated"].result["masks"].shape[1:] == (
        96,
        64,
    )
    assert np.abs(items["deep"].image[..., 0].astype(int) - rgb[..., 0]).max() == 0


def test_official_pth_weights_give_the_same_model(tmp_path, weights, predictor):
    official = tmp_path / "official.pth"
    torch.save({"model": official_layout(predictor.model.state_dict())}, official)
    from_pth = Predictor(demo_config(), official, top_k=20)
    assert torch.equal(from_pth(COCO_IMAGES[0])["scores"], predictor(COCO_IMAGES[0])["scores"])


def test_missing_weights_and_weights_of_another_preset(tmp_path, weights):
    with pytest.raises(FileNotFoundError, match="weights file not found: .*nope.safetensors"):
        Predictor("demo", tmp_path / "nope.safetensors")
    with pytest.raises(
        CheckpointMismatchError, match=r"(?s)preset 'demo' but the config is 'r50_ins_4s'.*shape mismatch"
    ):
        Predictor("r50_ins_4s", weights)
    with pytest.raises(ValueError, match="no config given"):
        Predictor(None, None)


def test_random_weights_warn_and_half_needs_a_gpu(caplog):
    with caplog.at_level(logging.WARNING, logger="maskdino.predict"):
        Predictor(demo_config())
    assert "randomly initialised" in caplog.text
    with pytest.raises(ValueError, match="CUDA device only"):
        Predictor(demo_config(), half="bf16")


def test_class_names_of_each_preset_family_and_custom_json(tmp_path):
    coco = dataset_info(get_config("demo"))
    assert coco.num_classes == 80 and coco.class_names[0] == "person" and coco.dataset_ids[-1] == 90
    panoptic = dataset_info(get_config("r50_pan"))
    assert (
        panoptic.num_classes == 133 and panoptic.class_names[-1] == "rug-merged" and not panoptic.isthing[80]
    )
    assert dataset_info(get_config("r50_ade_sem")).class_names[:3] == ("wall", "building", "sky")
    assert dataset_info(get_config("r50_city_sem")).class_names[-1] == "bicycle"
    categories = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 9, "name": "fox"}]
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps({"images": [], "annotations": [], "categories": categories}))
    info = dataset_info(demo_config("model.num_classes=3"), custom)
    assert info.class_names == ("dog", "cat", "fox") and info.dataset_ids == (3, 7, 9)
    with pytest.raises(ValueError, match="lists 3 categories but the model predicts 80"):
        dataset_info(demo_config(), custom)
    generic = dataset_info(demo_config("model.num_classes=5"))
    assert generic.class_names[4] == "class 4" and generic.dataset_ids == (0, 1, 2, 3, 4)
