"""Fit a config to the dataset it runs on: the classes it predicts and, for your own data, the task.

Training writes the dataset's class identity into the config (`data.class_names`, `data.class_ids`,
`model.thing_classes`), which every weights file and run folder stores, so predictions anywhere carry the
original ids and names. Your own data also sets the task of any Mask DINO preset:

    semantic folder   semantic output only (`model.test.semantic_on`); the official semantic head (softmax
                      over the classes + "no object", `model.decoder.semantic_ce_loss`) when training
    COCO panoptic     panoptic output with the json's things and stuff (`model.test.panoptic_on`)
    boxes only        a detector: class and box losses, box denoising (`model.decoder.dn=standard`), no mask
                      losses (the targets have no mask), no mask-enhanced box initialisation; results
                      without masks (`model.test.mask_on=false`: boxes, labels, scores; box AP)
    instances         instance output; a mixed json trains each annotation on what it has
"""

from __future__ import annotations

import logging

from maskdino.config import Config
from maskdino.data.custom import dataset_files
from maskdino.data.records import LoadedDataset

logger = logging.getLogger("maskdino.data")


def mask_counts(dataset: LoadedDataset) -> tuple[int, int]:
    """(non-crowd annotations, those without a mask) of an instance dataset; (0, 0) for other tasks."""
    kept = [a for r in dataset.records for a in r.get("annotations", ()) if not a["iscrowd"]]
    return len(kept), sum(a["segmentation"] is None for a in kept)


def adopt_dataset(cfg: Config, dataset: LoadedDataset, split: str) -> None:
    """Fit `cfg` (in place) to `dataset`, the config's "train" or "test" split.

    Training sets the classes and, for your own files, the task (see the module docstring); evaluation
    only switches the post-processing to the dataset's task and checks the class count against the
    model's.
    """
    info, training = dataset.info, split == "train"
    own_files = dataset_files(cfg.data, split).given
    if training and own_files:
        cfg.model.num_classes = info.num_classes
    if info.num_classes != cfg.model.num_classes:
        hint = (
            f"set model.num_classes={info.num_classes} or pick the preset made for this dataset"
            if training
            else "evaluate on data with the classes the model was trained on"
        )
        raise ValueError(
            f"dataset {info.name} has {info.num_classes} classes but the model predicts "
            f"{cfg.model.num_classes} (model.num_classes); {hint}"
        )
    if training:
        cfg.data.class_names, cfg.data.class_ids = info.class_names, info.dataset_ids
        if info.task != "semantic":
            cfg.model.thing_classes = info.thing_classes
    if not own_files:
        return
    if (
        training
        and cfg.model.architecture != "maskdino"
        and (info.task != "instance" or mask_counts(dataset)[1])
    ):
        kind = "has box-only annotations" if info.task == "instance" else f"is {info.task}"
        raise ValueError(
            f"dataset {info.name} {kind}; model.architecture={cfg.model.architecture} trains on instance masks "
            f"only: pick a Mask DINO preset (e.g. demo or r50_ins_4s)"
        )
    _set_task(cfg, dataset, training)


def _set_task(cfg: Config, dataset: LoadedDataset, training: bool) -> None:
    info, test, decoder = dataset.info, cfg.model.test, cfg.model.decoder
    shown = ", ".join(info.class_names[:10]) + (", ..." if info.num_classes > 10 else "")
    source = "classes file" if info.task == "semantic" else "json"
    notes = []
    if info.task == "semantic":
        test.semantic_on, test.instance_on, test.panoptic_on = True, False, False
        if training and not decoder.semantic_ce_loss:
            decoder.semantic_ce_loss = True
            notes.append("classes + no-object softmax head (model.decoder.semantic_ce_loss=true)")
    elif info.task == "panoptic":
        test.panoptic_on, test.instance_on = True, True
        if cfg.input.dataset_mapper == "coco_instance_lsj":
            cfg.input.dataset_mapper = "coco_panoptic_lsj"
        notes.append(f"{len(info.thing_classes)} things, {len(info.stuff_classes)} stuff")
    else:
        test.instance_on, test.panoptic_on, test.semantic_on = True, False, False
        total, box_only = mask_counts(dataset)
        if training:
            test.mask_on = not (total and box_only == total)
        if training and total and box_only == total:
            decoder.initialize_box_type = "no"
            if decoder.dn == "seg":
                decoder.dn = "standard"
            notes.append(
                "boxes only: training Mask DINO as a detector (class and box losses, box denoising; no mask "
                "losses, no mask-enhanced box initialisation; results without masks, model.test.mask_on=false)"
            )
        elif training and box_only:
            notes.append(f"{box_only} annotations without a mask train their class and box only")
    if training:
        logger.info(
            "dataset %s: %s, %d classes from the %s (%s)%s",
            info.name,
            info.task,
            info.num_classes,
            source,
            shown,
            "".join(f"; {note}" for note in notes),
        )
