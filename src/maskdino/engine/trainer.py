"""`train(cfg)`: the official Mask DINO training recipe on one process or many (torchrun).

One iteration = one optimiser step over the global batch (solver.ims_per_batch images): each of the
world-size processes runs `accum_steps` micro-batches of `per_device` images, dividing each micro-batch's
loss by `accum_steps`; DistributedDataParallel averages gradients over processes. Then full-model gradient
clipping, AdamW, the per-iteration lr schedule and the optional EMA update.

Resuming is exact: a checkpoint holds the model, optimiser, scheduler, GradScaler, EMA, the iteration and
every process's RNG state, and the data stream restarts at the same position (its order and augmentation
are a pure function of (seed, position), see maskdino.data.loader).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from maskdino.build import build_model
from maskdino.checkpoints.backbone_weights import random_backbone_warning
from maskdino.checkpoints.load import load_weights
from maskdino.checkpoints.native import save_weights
from maskdino.config import Config
from maskdino.config_validation import validate_config
from maskdino.data import build_dataset, build_train_loader
from maskdino.data.custom import dataset_files
from maskdino.data.records import LoadedDataset
from maskdino.data.task import adopt_dataset
from maskdino.devices import resolve_device
from maskdino.engine.checkpointer import Checkpointer, capture_rng_state, restore_rng_state, seed_all
from maskdino.engine.distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_mean,
    batch_layout,
    cleanup,
    fetch_on_main_first,
    init_distributed,
)
from maskdino.engine.ema import ModelEMA
from maskdino.engine.evaluator import evaluate_model
from maskdino.engine.logging import MetricWindow, TrainingLogger, flat_metrics
from maskdino.engine.optim import (
    amp_settings,
    build_grad_scaler,
    build_optimizer,
    build_scheduler,
    clip_and_step,
)
from maskdino.engine.run_folder import claim_run_folder, clear_previous_run

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced (paths are None on processes other than rank 0)."""

    output_dir: Path
    iterations: int
    final_weights: Path | None = None
    last_checkpoint: Path | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)
    eval_results: dict[str, Any] = field(default_factory=dict)


def train(
    cfg: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `cfg`'s model on its datasets into `cfg.output_dir`.

    `resume` continues from the output folder's newest checkpoint that loads (a fresh start when there is
    none); without it a folder holding another run is refused, unless `overwrite` deletes that run first.
    `weights` (official .pth or our .safetensors) initialises a fresh run, re-initialising the class heads
    when the class count differs. Under torchrun every process calls this; rank 0 writes the outputs.
    """
    dist_info = init_distributed()
    package_logger = logging.getLogger("maskdino")
    level = package_logger.level
    if not dist_info.is_main:
        package_logger.setLevel(logging.WARNING)
    try:
        trainer = Trainer(
            cfg,
            dist_info,
            resume=resume,
            overwrite=overwrite,
            weights=weights,
            device=device,
            progress=progress,
        )
        return trainer.run()
    finally:
        package_logger.setLevel(level)
        cleanup(dist_info)


class Trainer:
    """Holds the state of one run; `run()` trains from the current iteration to solver.max_iter."""

    def __init__(
        self,
        cfg: Config,
        dist_info: DistInfo,
        resume: bool = False,
        overwrite: bool = False,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> None:
        # a copy: the caller's config is left alone
        self.cfg = cfg = validate_config(Config.from_dict(copy.deepcopy(cfg.to_dict())), training=True)
        self.dist = dist_info
        self.device = resolve_device(device, dist_info.local_rank)
        self.output_dir = Path(cfg.output_dir)
        self.progress = progress
        self.checkpointer = Checkpointer(self.output_dir, cfg.solver.keep_last_checkpoints)
        claim_run_folder(self.checkpointer, resume, overwrite, dist_info.is_main)
        seed_all(cfg.seed + dist_info.rank)

        self.train_set = build_dataset(cfg, "train")
        adopt_dataset(cfg, self.train_set, "train")  # classes, and the task of your own data
        self.layout = batch_layout(
            cfg.solver.ims_per_batch,
            dist_info.world_size,
            cfg.solver.per_device_batch,
            cfg.solver.grad_accum_steps,
        )
        logger.info("%s", self.layout.describe())
        self.val_set = self._validation_set()

        if cfg.model.backbone.weights is not None:
            fetch_on_main_first(cfg.model.backbone.weights, dist_info)
        self.model = build_model(cfg).to(self.device)
        if dist_info.world_size > 1 and self.device.type == "cuda":
            # batch statistics over every GPU, as the official SyncBN configs train (frozen BN is untouched)
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = build_optimizer(self.model, cfg.solver)
        self.scheduler = build_scheduler(self.optimizer, cfg.solver)
        self.amp = amp_settings(cfg.solver, self.device)
        self.scaler = build_grad_scaler(self.amp)
        self.iteration = 0
        self.last_checkpoint: Path | None = None
        self.rng_to_restore: dict[str, Any] | None = None
        state = self._resume_state() if resume else None
        if state is None and weights is not None:
            fetch_on_main_first(weights, dist_info)
            load_weights(self.model, weights, reinit_class_heads=True, progress=dist_info.is_main)
            if cfg.model.backbone.weights is not None:
                logger.info("--weights %s replaced the backbone loaded from model.backbone.weights", weights)
        elif state is not None and weights is not None:
            logger.info("resuming: --weights %s is not used (the checkpoint holds the weights)", weights)
        elif state is None and dist_info.is_main and (warning := random_backbone_warning(cfg.model.backbone)):
            logger.warning(warning)
        if state is not None:
            self._load_state(state)

        self.ddp = dist_info.world_size > 1
        self.net: nn.Module = self.model
        if self.ddp:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        # after the DDP wrap, which copies rank 0's weights to every rank
        self.ema = ModelEMA(self.model, cfg.solver.ema_decay) if cfg.solver.ema else None
        if self.ema is not None and state is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        if dist_info.is_main:
            if overwrite:  # only now: a run that failed to start (bad json, weights...) deleted nothing
                clear_previous_run(self.output_dir)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def _validation_set(self) -> LoadedDataset | None:
        """Your own validation files (evaluated every eval_period and at the end), else the standard test
        set when eval_period > 0 and the training data is standard too."""
        cfg = self.cfg
        if not dataset_files(cfg.data, "test").given:
            if cfg.solver.eval_period <= 0:
                return None
            if dataset_files(cfg.data, "train").given:
                logger.info("no validation data given (--val-json / --val-images): evaluation is off")
                return None
        val_set = build_dataset(cfg, "test")
        adopt_dataset(cfg, val_set, "test")
        return val_set

    def _resume_state(self) -> dict[str, Any] | None:
        found = self.checkpointer.load_latest()
        if found is None:
            logger.info("--resume: no checkpoint in %s yet, starting from iteration 0", self.output_dir)
            return None
        path, state = found
        logger.info("resuming from %s", path)
        self.last_checkpoint = path
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        differences = _config_differences(state.get("config", {}), self.cfg.to_dict())
        if differences:
            logger.warning(
                "the resumed run's config differs from the checkpoint's: %s", "; ".join(differences)
            )
        if state.get("global_batch") != self.layout.global_batch:
            logger.warning(
                "checkpoint global batch %s != %d: the data order after resuming differs from the original run",
                state.get("global_batch"),
                self.layout.global_batch,
            )
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        rng = state.get("rng", [])
        if len(rng) == self.dist.world_size:
            self.rng_to_restore = rng[self.dist.rank]
        else:
            logger.warning(
                "checkpoint holds RNG states of %d processes, this run has %d: reseeding (denoising noise and "
                "point sampling will differ from the original run)",
                len(rng),
                self.dist.world_size,
            )
            seed_all(self.cfg.seed + self.dist.rank + 1_000_003 * self.iteration)

    def training_state(self) -> dict[str, Any]:
        """Everything resuming needs; collective (gathers every process's RNG state)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "iteration": self.iteration,
            "rng": all_gather_object(capture_rng_state()),
            "global_batch": self.layout.global_batch,
            "world_size": self.dist.world_size,
            "config": self.cfg.to_dict(),
        }

    def save_checkpoint(self) -> None:
        state = self.training_state()
        if self.dist.is_main:
            self.last_checkpoint = self.checkpointer.save(self.iteration, state)

    def run(self) -> TrainResult:
        cfg, solver = self.cfg, self.cfg.solver
        result = TrainResult(self.output_dir, self.iteration)
        if self.iteration >= solver.max_iter:
            logger.info("already trained %d of %d iterations", self.iteration, solver.max_iter)
        loader = build_train_loader(
            cfg,
            self.train_set,
            self.layout.per_device,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            start_iter=self.iteration * self.layout.accum_steps,
        )
        data = iter(loader)  # creating the iterator draws from the torch RNG: restore the state after it
        if self.rng_to_restore is not None:
            restore_rng_state(self.rng_to_restore)
        log = TrainingLogger(
            self.output_dir, self.iteration, solver.max_iter, self.dist.is_main, self.progress
        )
        window = MetricWindow()
        self.net.train()
        try:
            while self.iteration < solver.max_iter:
                window.add(self._step(data))
                self.iteration += 1
                log.advance()
                done = self.iteration
                if (solver.log_period > 0 and done % solver.log_period == 0) or done == solver.max_iter:
                    result.last_metrics = window.mean_and_reset()
                    log.log(done, result.last_metrics)
                if (
                    solver.checkpoint_period > 0 and done % solver.checkpoint_period == 0
                ) or done == solver.max_iter:
                    self.save_checkpoint()
                periodic = solver.eval_period > 0 and done % solver.eval_period == 0
                if self.val_set is not None and (periodic or done == solver.max_iter):
                    result.eval_results = self.evaluate()
                    log.log(done, flat_metrics("eval", result.eval_results))
        finally:
            log.close()
        result.iterations = self.iteration
        result.last_checkpoint = self.last_checkpoint
        if self.dist.is_main:
            result.final_weights = save_weights(self.output_dir / "model_final.safetensors", self.model, cfg)
            if self.ema is not None:
                save_weights(self.output_dir / "model_final_ema.safetensors", self.ema.module, cfg)
            logger.info("final weights: %s", result.final_weights)
        return result

    def _step(self, data) -> dict[str, float]:
        """One optimiser step over the global batch; returns this step's metrics (averaged over processes)."""
        start = time.perf_counter()
        data_time = 0.0
        accum = self.layout.accum_steps
        metrics: dict[str, float] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for micro in range(accum):
            fetch = time.perf_counter()
            images, targets, _ = next(data)
            data_time += time.perf_counter() - fetch
            images = [image.to(self.device, non_blocking=True) for image in images]
            targets = [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]
            last = micro == accum - 1
            with nullcontext() if last or not self.ddp else self.net.no_sync():
                with self.amp.autocast():
                    losses = self.net(images, targets)
                values = self._checked_loss_values(losses)
                total = sum(losses.values())
                self.scaler.scale(total / accum).backward()
            for key, value in values.items():
                metrics[key] = metrics.get(key, 0.0) + value / accum
        grad_norm = clip_and_step(self.optimizer, self.scaler, self.cfg.solver)
        metrics["lr"] = max(group["lr"] for group in self.optimizer.param_groups)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        if grad_norm is not None:
            metrics["grad_norm"] = float(grad_norm)
        metrics["data_time"] = data_time
        metrics["step_time"] = time.perf_counter() - start
        return metrics

    def _checked_loss_values(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """Loss terms averaged over processes (so every process sees the same values and stops together on
        a non-finite loss, naming the iteration, the terms and the last good checkpoint)."""
        keys = sorted(losses)
        stacked = torch.stack([losses[k].detach().float() for k in keys])
        values = dict(zip(keys, all_reduce_mean(stacked).tolist()))
        values["loss"] = sum(values.values())
        if not math.isfinite(values["loss"]):
            bad = [k for k in keys if not math.isfinite(values[k])]
            checkpoint = self.last_checkpoint or "none written yet"
            raise FloatingPointError(
                f"non-finite loss at iteration {self.iteration + 1}: {', '.join(bad) or 'total'} "
                f"({', '.join(f'{k}={values[k]}' for k in bad)}); last good checkpoint: {checkpoint}. "
                f"Lower solver.base_lr, check the data, or resume from that checkpoint"
            )
        return values

    def evaluate(self) -> dict[str, Any]:
        """Evaluate the EMA weights (if on) or the model on the validation set, on every process.

        The evaluation draws from no RNG of the training: its RNG use is undone so resuming stays exact.
        """
        rng = capture_rng_state()
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        try:
            results = evaluate_model(
                model,
                self.cfg,
                self.val_set,
                self.output_dir / f"eval_{self.iteration:07d}",
                show_progress=self.progress,
            )
        finally:
            self.net.train()
            if self.ema is not None:
                self.ema.module.eval()
            restore_rng_state(rng)
        logger.info("evaluation at iteration %d: %s", self.iteration, results)
        return results


def _config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    differences = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences.extend(_config_differences(a, b, f"{prefix}{key}."))
        elif a != b and f"{prefix}{key}" != "output_dir":
            differences.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return differences
