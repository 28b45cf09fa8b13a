"""The training loop: multi-task losses, loss weighting, training procedures, checkpoints, resume.

    stemlab train --config runs/iass.json            # or flags; --resume continues a killed run

A run folder holds config.json, checkpoint.pt (last, with optimizer state), best.pt (best weights),
log.jsonl (one JSON line per logged step and per epoch) and, at the end, loss.png.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.audio import write_text_atomic
from engine.device import cpu_has_fast_bf16, pick_device
from engine.errors import StemLabError
from engine.gating import GatingSettings
from engine.metrics import is_active, sdr
from engine.modelcard import ModelCard
from engine.separator import Separator
from engine.spectral import STFTConfig, stft
from training.datasets.dataset import MultitrackDataset
from training.errors import TrainingError
from training.run.batches import (
    Batch,
    BatchStream,
    ExcerptSource,
    collate_identity,
    estimate_source_energy,
    make_source,
)
from training.run.checkpoints import atomic_torch_save, load_checkpoint_file
from training.run.config import TrainConfig
from training.run.distributed import Group, sync_batch_norm
from training.run.models import UMXBaseline, build_model
from training.run.weighting import dwa_weights, ebw_weights, energy_normalised_weights, unit_weights

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
EMA = "ema.pt"


def set_fingerprint(root: Optional[str], with_songs: bool) -> Optional[str]:
    """What a data set is, for telling on resume whether a run's data changed: its generator settings
    (seed, version, synth share) and, with_songs, which songs it holds. None when there is no set."""
    if not root:
        return None
    import hashlib

    path = Path(root)
    settings = path / "settings.json"
    text = settings.read_text() if settings.is_file() else ""
    try:
        keys = {k: v for k, v in json.loads(text).items() if k not in ("fonts", "store_mixture")} if text else {}
    except json.JSONDecodeError:
        keys = {}
    parts = [json.dumps(keys, sort_keys=True)]
    if with_songs:
        songs = path / "songs"
        parts += sorted(p.name for p in songs.iterdir()) if songs.is_dir() else []
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _open_log(path: Path) -> Any:
    """Open log.jsonl for appending; a line cut short by a kill is ended first, so it costs only itself."""
    log = path.open("a")
    if path.stat().st_size:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                log.write("\n")
    return log


def _worker_ignores_stop(_: int) -> None:
    # Ctrl-C or a SIGTERM to the process group reaches the loader's worker too; the trainer's own
    # handler stops the run cleanly and saves a checkpoint, so the worker must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class LossComputer:
    """Per-source separation and activity losses of one batch.

    Returns sep (n_sources,), act (n_sources,) and the per-source item counts they averaged over.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.stft_cfg = STFTConfig(cfg.n_fft, cfg.hop_length)

    def spectra(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture (batch, 2, max_bin, T) and target (batch, S, 2, max_bin, T) magnitudes."""
        mb = self.cfg.max_bin
        mix = stft(batch.mixture, self.stft_cfg)[..., :mb, :].abs()
        tgt = stft(batch.stems, self.stft_cfg)[..., :mb, :].abs()
        return mix, tgt

    def __call__(self, model: nn.Module, batch: Batch, mix: torch.Tensor, tgt: torch.Tensor,
                 autocast: contextlib.AbstractContextManager) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        x = mix.contiguous(memory_format=torch.channels_last) if cfg.channels_last else mix
        known = batch.known.float()  # (B, S)
        weight_items = known
        if cfg.exclude_silent:
            active = (tgt.pow(2).mean(dim=(2, 3, 4)) > 1e-6).float()
            weight_items = known * active
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        with autocast:
            if isinstance(inner, UMXBaseline):
                est = inner.magnitudes(x).float()  # Open-Unmix learns magnitudes directly
                logits = None
            else:
                masks, logits = model(x)
                masks = masks.float()
                est = masks * mix[:, None] if cfg.separation_mode == "indirect" else masks
        if cfg.separation_mode == "direct" and not isinstance(inner, UMXBaseline):
            target = (tgt / (tgt.sum(dim=1, keepdim=True) + 1e-8)).clamp(0, 1)  # ideal ratio masks
        else:
            target = tgt
        diff = est - target
        per = diff.pow(2) if cfg.loss == "mse" else diff.abs()
        per_item = per.mean(dim=(2, 3, 4))  # (B, S)
        counts = weight_items.sum(dim=0)
        sep = (per_item * weight_items).sum(dim=0) / counts.clamp_min(1.0)
        if logits is not None and cfg.activity_weight > 0:
            bce = F.binary_cross_entropy_with_logits(logits.float(), batch.activity, reduction="none").mean(dim=2)
            act = (bce * known).sum(dim=0) / known.sum(dim=0).clamp_min(1.0)
        else:
            act = torch.zeros_like(sep)
        return sep, act, counts


class Trainer:
    """Runs (and resumes) one training run as configured."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True) -> None:
        cfg.validate()
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.progress = progress
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        try:
            self.device = pick_device(cfg.device)
        except StemLabError as exc:
            raise TrainingError(str(exc)) from exc
        self.group = Group.from_env(self.device.type)  # torchrun's processes, or just this one
        self.rank, self.world = self.group.rank, self.group.world
        self.shard = self.group.shard(cfg.batch_size)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.group.local_rank)
            torch.cuda.set_device(self.device)
        prec = cfg.precision
        if prec == "auto":
            prec = "bf16" if (self.device.type == "cuda" or cpu_has_fast_bf16()) else "fp32"
        self.precision = prec
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg).to(self.device)
        if self.world > 1:
            self.model = sync_batch_norm(self.model, self.device.type)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", factor=0.5,
                                                                    patience=cfg.lr_patience)
        self.losses = LossComputer(cfg)
        self.step = 0
        self.epoch = 0
        self.epoch_losses: list[list[float]] = []  # per finished epoch, mean separation loss per source
        self.energies: Optional[list[float]] = None
        self.best_score = -math.inf
        self.history: list[dict[str, Any]] = []
        self.elapsed_s = 0.0
        self.cpu_s = 0.0  # CPU time of the training process (all its threads), summed over every resume
        self.ema: Optional[dict[str, torch.Tensor]] = None  # moving average of the weights (cfg.ema_decay > 0)
        self._stop = False
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        ckpt = self.out / CHECKPOINT
        if resume and ckpt.exists():
            self.load_checkpoint(ckpt)
        elif resume and self.rank == 0:
            print(f"train: no checkpoint in {self.out}; starting fresh")
        if self.world > 1 and self.group.from_main(self.step) != self.step:
            # another machine's rank that cannot see rank 0's run folder would train out of step
            raise TrainingError(f"rank {self.rank} is at step {self.step}, rank 0 at another: every rank must "
                                f"read the same {self.out / CHECKPOINT} to resume")
        if cfg.ema_decay <= 0:
            self.ema = None
        elif self.ema is None:
            self.ema = {k: v.detach().clone().float() if v.dtype.is_floating_point else v.detach().clone()
                        for k, v in self.model.state_dict().items()}
        if self.rank == 0:
            write_text_atomic(self.out / "config.json", cfg.to_json())  # a kill must not leave half a config
        self.train_model: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)  # type: ignore[assignment]

    # -- checkpoints -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "epoch": self.epoch,
            "epoch_losses": self.epoch_losses, "energies": self.energies, "best_score": self.best_score,
            "history": self.history, "elapsed_s": self.elapsed_s, "cpu_s": self.cpu_s, "config": asdict(self.cfg),
            "train_fingerprint": [set_fingerprint(r, with_songs=False) for r in self.cfg.train_sets],
            "val_fingerprint": set_fingerprint(self.cfg.val_set, with_songs=True),
            "ema": self.ema,
        }

    def save_checkpoint(self) -> None:
        if self.rank == 0:
            atomic_torch_save(self.state(), self.out / CHECKPOINT)
            if self.ema is not None:
                # the averaged weights as a weights-only checkpoint, which evaluate and export-model read as is
                atomic_torch_save({"model": self.ema, "step": self.step, "epoch": self.epoch, "ema_decay":
                                   self.cfg.ema_decay, "elapsed_s": self.elapsed_s, "cpu_s": self.cpu_s,
                                   "config": asdict(self.cfg)},
                                  self.out / EMA)

    def load_checkpoint(self, path: Path) -> None:
        state = load_checkpoint_file(path, map_location=self.device)
        if state.get("config", {}).get("model") != self.cfg.model:
            raise TrainingError(f"{path}: the checkpoint is of another model type")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.epoch_losses = [list(map(float, e)) for e in state["epoch_losses"]]
        self.energies = None if state["energies"] is None else list(map(float, state["energies"]))
        self.best_score = float(state["best_score"])
        self.history = list(state["history"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.cpu_s = float(state.get("cpu_s", 0.0))  # 0 for runs saved before it was counted
        self.ema = state.get("ema")  # None when the run kept none: it starts from the resumed weights
        say = print if self.rank == 0 else (lambda *_: None)
        say(f"train: resumed {self.out} at step {self.step} (epoch {self.epoch})")
        # A run may move on to other data (a new generator, a new validation set): energies measured on the
        # old training sets, and a best score on the old validation set, would mislead what follows.
        if state.get("train_fingerprint") != [set_fingerprint(r, with_songs=False) for r in self.cfg.train_sets]:
            self.energies = None
            say("train: the training sets differ from the checkpoint's; source energies are measured again")
        if state.get("val_fingerprint") != set_fingerprint(self.cfg.val_set, with_songs=True):
            self.best_score = -math.inf
            self.scheduler.best = self.scheduler.mode_worse
            self.scheduler.num_bad_epochs = 0
            say("train: the validation set differs from the checkpoint's; its best score starts afresh")

    # -- weighting ---------------------------------------------------------------------------

    def weights(self, tgt: torch.Tensor, known: torch.Tensor) -> np.ndarray:
        cfg = self.cfg
        n = len(cfg.sources)
        if cfg.weighting == "unit":
            return unit_weights(n)
        if cfg.weighting == "dwa":
            return dwa_weights(self.epoch_losses, cfg.dwa_temperature) if self.epoch_losses else unit_weights(n)
        if cfg.ebw_scope == "batch":
            k = known.float()
            e = (tgt.pow(2).mean(dim=(2, 3, 4)) * k).sum(0) / k.sum(0).clamp_min(1)
            energies = e.detach().cpu().numpy().tolist()
        else:
            assert self.energies is not None
            energies = list(self.energies)
        if cfg.weighting == "energy_norm":
            return energy_normalised_weights(energies)
        return ebw_weights(energies, power=2 if cfg.weighting == "ebw2" else 1)

    # -- the loop ----------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batches(self, source: ExcerptSource) -> Iterator[Batch]:
        stream = BatchStream(source, self.step, self.shard)
        if self.cfg.num_workers > 0:
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.cfg.num_workers,
                                                 collate_fn=collate_identity,  # type: ignore[arg-type]
                                                 prefetch_factor=2,
                                                 persistent_workers=False, worker_init_fn=_worker_ignores_stop)
            return iter(loader)
        return iter(stream)

    def train_step(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.cfg
        n_src = len(cfg.sources)
        mixture = batch.mixture.to(self.device)
        batch = Batch(mixture, batch.stems.to(self.device), batch.activity.to(self.device),
                      batch.known.to(self.device), batch.step, batch.source)
        mix, tgt = self.losses.spectra(batch)
        w = self.weights(tgt, batch.known)
        self.train_model.train()
        sep, act, counts = self.losses(self.train_model, batch, mix, tgt, self.autocast())
        wt = torch.as_tensor(w, dtype=sep.dtype, device=sep.device)
        total = (wt * (sep + cfg.activity_weight * act)).sum()
        accumulate = cfg.procedure == "interleaved_accum"
        round_start = not accumulate or self.step % n_src == 0
        round_end = not accumulate or self.step % n_src == n_src - 1
        if round_start:
            self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if round_end:
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if self.ema is not None:
                self.update_ema()
        self.step += 1
        return (sep.detach().cpu().numpy(), act.detach().cpu().numpy(), counts.detach().cpu().numpy(), w)

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * weights, for parameters and batch-norm statistics alike."""
        assert self.ema is not None
        d = self.cfg.ema_decay
        for k, v in self.model.state_dict().items():
            e = self.ema[k]
            if v.dtype.is_floating_point:
                e.mul_(d).add_(v.detach().float(), alpha=1.0 - d)
            else:
                e.copy_(v)

    def request_stop(self, *_: Any) -> None:
        self._stop = True

    def run(self, source: Optional[ExcerptSource] = None) -> dict[str, Any]:
        """Train until max_steps, max_minutes or max_cpu_hours (or SIGINT/SIGTERM); checkpoint along the way. The
        batches come from the config's sets (make_source) unless another source is given."""
        cfg = self.cfg
        source = source if source is not None else make_source(cfg)
        if cfg.weighting in ("ebw1", "ebw2", "energy_norm") and cfg.ebw_scope == "dataset" and self.energies is None:
            self.energies = estimate_source_energy(source).tolist()
        val = ValidationSet(cfg) if cfg.val_set and self.rank == 0 else None
        old_handlers = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        n_src = len(cfg.sources)
        sums = np.zeros(n_src)
        counts_sum = np.zeros(n_src)
        act_sum = np.zeros(n_src)
        t_start = time.perf_counter()
        elapsed0, cpu0, cpu_start = self.elapsed_s, self.cpu_s, time.process_time()
        last_ckpt = t_start
        bar = None
        if self.progress and self.rank == 0:
            from tqdm import tqdm
            bar = tqdm(total=cfg.max_steps, initial=self.step, desc=cfg.name, unit="step", dynamic_ncols=True)
        it = self.batches(source)
        log = _open_log(self.out / "log.jsonl") if self.rank == 0 else None
        try:
            while self.step < cfg.max_steps:
                # the budget counts training time over every resume of the run, so runs compare fairly;
                # all ranks agree to stop (a signal may reach one first), so they stop at the same step
                over = (bool(cfg.max_minutes) and self.elapsed_s / 60 >= cfg.max_minutes) or \
                       (bool(cfg.max_cpu_hours) and self.cpu_s / 3600 >= cfg.max_cpu_hours)
                if self.group.any(self._stop or over):
                    break
                batch = next(it)
                t0 = time.perf_counter()
                sep, act, cnt, w = self.train_step(batch)
                step_s = time.perf_counter() - t0
                if self.world > 1:  # the whole batch's losses: each rank's sums over its items, added
                    n = len(sep)
                    tot = self.group.sum(np.concatenate([sep * cnt, cnt, act * (cnt > 0), cnt > 0]))
                    cnt = tot[n:2 * n]
                    sep = tot[:n] / np.maximum(cnt, 1)
                    act = tot[2 * n:3 * n] / np.maximum(tot[3 * n:], 1)
                sums += sep * cnt
                counts_sum += cnt
                act_sum += act * (cnt > 0)
                self.elapsed_s = elapsed0 + time.perf_counter() - t_start
                self.cpu_s = cpu0 + time.process_time() - cpu_start
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float((w * sep).sum()):.3g}", act=f"{float(act.mean()):.3f}")
                if log is not None and self.step % cfg.log_every == 0:
                    rec = {"kind": "step", "step": self.step, "epoch": self.epoch, "time_s": round(self.elapsed_s, 1),
                           "cpu_s": round(self.cpu_s, 1),
                           "step_s": round(step_s, 3), "sep": sep.round(6).tolist(), "act": act.round(5).tolist(),
                           "weights": np.round(w, 4).tolist(), "lr": self.optimizer.param_groups[0]["lr"]}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                if self.step % cfg.epoch_steps == 0:
                    self.end_epoch(sums / np.maximum(counts_sum, 1), act_sum, val, log)
                    sums[:] = 0
                    counts_sum[:] = 0
                    act_sum[:] = 0
                    last_ckpt = time.perf_counter()
                elif time.perf_counter() - last_ckpt > cfg.checkpoint_minutes * 60:
                    self.save_checkpoint()
                    last_ckpt = time.perf_counter()
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            # Shut the loader's worker down now: left to interpreter exit, multiprocessing's exit hook
            # SIGTERMs it (which it ignores, see _worker_ignores_stop) and waits for it forever.
            shutdown = getattr(it, "_shutdown_workers", None)
            if callable(shutdown):
                shutdown()
            del it
            self.save_checkpoint()
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
        if self.rank == 0:
            plot_history(self.out)
        if self.world > 1:
            # DDP's reducer holds the process group; left alive until interpreter exit, its threads
            # are torn down after Python's and the process aborts ("terminate called without an active
            # exception", 3 of 25 runs of a bare two-process DDP script): drop it before leaving the group
            self.train_model = self.model
            gc.collect()
        self.group.close()
        return {"step": self.step, "epoch": self.epoch, "best_score": self.best_score}

    def end_epoch(self, sep_means: np.ndarray, act_sum: np.ndarray, val: Optional["ValidationSet"], log: Any) -> None:
        """Close an epoch: validate (rank 0, its score sent to every rank's schedule), log, checkpoint."""
        self.epoch += 1
        self.epoch_losses.append(sep_means.tolist())
        self.epoch_losses = self.epoch_losses[-2:]
        rec: dict[str, Any] = {"kind": "epoch", "epoch": self.epoch, "step": self.step,
                               "time_s": round(self.elapsed_s, 1), "train_sep": sep_means.round(6).tolist(),
                               "lr": self.optimizer.param_groups[0]["lr"]}
        if self.cfg.val_set:
            metrics: dict[str, Any] = {}
            score: Optional[float] = None
            if val is not None:
                metrics = val.evaluate(self.model, self.precision)
                rec.update(metrics)
                score = metrics["val_sdr_gated_mean"] if not isinstance(self.model, UMXBaseline) else metrics["val_sdr_mean"]
            score = self.group.from_main(score)
            self.scheduler.step(score)
            if score > self.best_score:
                self.best_score = score
                if self.rank == 0:
                    atomic_torch_save({"model": self.model.state_dict(), "step": self.step, "epoch": self.epoch,
                                       "metrics": metrics, "config": asdict(self.cfg)}, self.out / BEST)
                rec["best"] = True
        self.history.append(rec)
        if log is not None:
            log.write(json.dumps(rec) + "\n")
            log.flush()
        self.save_checkpoint()


class ValidationSet:
    """Fixed excerpts of a held-out generated set, evaluated through the inference path."""

    def __init__(self, cfg: TrainConfig) -> None:
        assert cfg.val_set is not None
        if not Path(cfg.val_set).exists():
            raise TrainingError(f"{cfg.val_set}: no such validation set; make one with `stemlab make-data`")
        self.cfg = cfg
        self.stft_cfg = STFTConfig(cfg.n_fft, cfg.hop_length)
        ds = MultitrackDataset(cfg.val_set)
        rng = np.random.default_rng(1234)
        self.items: list[tuple[np.ndarray, np.ndarray]] = []
        n = int(cfg.val_seconds * cfg.sample_rate)
        songs = [e for e in ds.songs if e.n_samples > n]
        for k in range(min(cfg.val_excerpts, 4 * len(songs))):
            e = songs[k % len(songs)]
            start_s = float(rng.uniform(0, (e.n_samples - n) / cfg.sample_rate))
            ex = ds.load_excerpt(e, start_s, cfg.val_seconds)
            stems = np.stack([ex.stems.get(s, np.zeros_like(ex.mixture)) for s in cfg.sources])
            self.items.append((stems.sum(0), stems))
        if not self.items:
            raise TrainingError(f"{cfg.val_set}: no song is longer than val_seconds ({cfg.val_seconds:g} s); "
                                "lower val_seconds or make longer songs")

    @torch.no_grad()
    def evaluate(self, model: nn.Module, precision: str) -> dict[str, Any]:
        """Score `model` on the excerpts through the engine's Separator, as `stemlab evaluate` and the app
        separate (one chunk per excerpt, default gating); the loss is the training loss on the masks."""
        cfg = self.cfg
        device = next(model.parameters()).device
        card = ModelCard(name=cfg.name, sources=list(cfg.sources), sample_rate=cfg.sample_rate, n_fft=cfg.n_fft,
                         hop_length=cfg.hop_length, max_bin=cfg.max_bin, architecture={}, weights="-")
        # one chunk holds a whole excerpt: a chunk is a whole number of the network's time units
        unit_s = (cfg.hop_length << int(getattr(model, "depth", 0))) / cfg.sample_rate
        sep = Separator(model, card, device=device, precision=precision, chunk_seconds=cfg.val_seconds + unit_s,
                        channels_last=cfg.channels_last)
        sdr_un: list[list[float]] = [[] for _ in cfg.sources]
        sdr_g: list[list[float]] = [[] for _ in cfg.sources]
        losses = []
        try:
            for mixture, stems in self.items:
                r = sep.separate(mixture, cfg.sample_rate, gating=GatingSettings(), keep_masks=True)
                assert r.ungated is not None and r.masks is not None
                mag = stft(torch.from_numpy(mixture), self.stft_cfg)[:, :cfg.max_bin].abs()
                tgt = stft(torch.from_numpy(stems), self.stft_cfg)[:, :, :cfg.max_bin].abs()
                masks = torch.from_numpy(r.masks.astype(np.float32))
                losses.append(float(((masks * mag[None] - tgt) ** 2).mean()))
                for j in range(len(cfg.sources)):
                    if is_active(stems[j]):
                        sdr_un[j].append(sdr(stems[j], r.ungated[j]))
                        sdr_g[j].append(sdr(stems[j], r.stems[j]))
        finally:
            model.train()
        per_un = [float(np.mean(v)) if v else float("nan") for v in sdr_un]
        per_g = [float(np.mean(v)) if v else float("nan") for v in sdr_g]
        return {"val_loss": float(np.mean(losses)), "val_sdr": per_un, "val_sdr_gated": per_g,
                "val_sdr_mean": float(np.nanmean(per_un)), "val_sdr_gated_mean": float(np.nanmean(per_g))}


def plot_history(out: Path) -> Optional[Path]:
    """Draw the loss and validation curves of a run's log.jsonl into loss.png."""
    log = out / "log.jsonl"
    if not log.exists():
        return None
    steps, train, epochs, val_sdr = [], [], [], []
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("kind") == "step":
            steps.append(rec["step"])
            train.append(float(np.sum(np.asarray(rec["weights"]) * np.asarray(rec["sep"]))))
        elif rec.get("kind") == "epoch" and "val_sdr_mean" in rec:
            epochs.append(rec["step"])
            val_sdr.append(rec.get("val_sdr_gated_mean", rec["val_sdr_mean"]))
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    k = max(1, len(train) // 200)
    smooth = np.convolve(train, np.ones(k) / k, mode="valid")
    ax[0].plot(steps[:len(smooth)], smooth)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].set_title("training loss (weighted)")
    if val_sdr:
        ax[1].plot(epochs, val_sdr, marker="o")
    ax[1].set_xlabel("step")
    ax[1].set_title("validation SDR, dB (mean over active stems)")
    fig.tight_layout()
    path = out / "loss.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
