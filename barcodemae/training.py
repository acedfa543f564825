"""The pretraining library behind train.py: configuration, data, validation, optimisation, checkpoints, logging,
export. train.py parses the flags and runs the loop; everything it calls lives here.

Functions that take `args` read train.py's parsed flags (the attributes named in train.py's `parse_args`).
Importing this module changes no process setting (train.py sets `OMP_WAIT_POLICY` before torch loads).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import DistributedType
from transformers import get_cosine_schedule_with_warmup

from barcodemae.data import load_barcodes, prepare_barcodes
from barcodemae.encoders import auto_precision
from barcodemae.errors import UserError
from barcodemae.identity_batches import NeighbourBatchSampler, kmer_neighbour_table, teacher_matrix
from barcodemae.model_card import model_card
from barcodemae.recipes import DEFAULT_RECIPE, RECIPES, SIZE_PRESETS
from configuration_barcodemae import BarcodeMAEConfig
from tokenization_barcodemae import BarcodeMAETokenizer

SIZE_FLAGS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "decoder_hidden_size", "decoder_num_hidden_layers", "decoder_num_attention_heads", "decoder_intermediate_size",
)  # fmt: skip
OBJECTIVE_FLAGS = (
    "objective", "k_mer", "max_sequence_length", "mask_ratio", "pooling_layer",
    "masked_loss_weight", "hamming_soft_targets", "contrastive_weight", "contrastive_temperature", "profile_loss_weight",
    "identity_distillation_weight", "identity_temperature", "identity_embedding_temperature", "distillation_teacher",
)  # fmt: skip

# ------------------------------------------------------------------------------------------------------- configuration


def build_config(args) -> BarcodeMAEConfig:
    """Preset (or --model_config, or --model_name_or_path's config) first, then the explicit flags on top."""
    if args.model_config or args.model_name_or_path:
        if args.model_config:
            fields = json.loads(Path(args.model_config).read_text())
        else:
            fields = BarcodeMAEConfig.get_config_dict(args.model_name_or_path)[0]
        for derived in ("auto_map", "architectures", "model_type", "transformers_version", "vocab_size", "dtype"):
            fields.pop(derived, None)
    else:
        fields = dict(SIZE_PRESETS[args.model_size])
    for name in (*SIZE_FLAGS, *OBJECTIVE_FLAGS):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    return BarcodeMAEConfig(**fields)


def recipe_config(model_size: str = "small", recipe: str = DEFAULT_RECIPE) -> BarcodeMAEConfig:
    """The configuration `train.py --model_size SIZE --recipe RECIPE` trains (no other flags)."""
    objective = {name: value for name, value in RECIPES[recipe].items() if name in OBJECTIVE_FLAGS}
    return BarcodeMAEConfig(**SIZE_PRESETS[model_size], **objective)


def resolve_mixed_precision(choice: str) -> str:
    """`auto`: bf16 where it is fast (measured in benchmarks/bench_pretraining.py: on CPUs only with bf16
    instructions), else no."""
    if choice != "auto":
        return choice
    return "bf16" if auto_precision() == "bf16" else "no"


def resolve_report_to(choice: str) -> str:
    """`auto`: TensorBoard when it is installed, else none."""
    if choice != "auto":
        return choice
    installed = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    return "tensorboard" if installed else "none"


def resolve_attn_implementation(choice: str, device: torch.device) -> str:
    """`auto`: eager on CPU (its backward is faster there than SDPA's, see BENCHMARKS.md), else sdpa."""
    if choice != "auto":
        return choice
    return "eager" if device.type == "cpu" else "sdpa"


def check_world_size(accelerator) -> None:
    """Refuse processes that Accelerate does not see: each would train a model of its own, all writing output_dir."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise RuntimeError(
            f"{launched} processes were launched (WORLD_SIZE) but Accelerate set up {accelerator.num_processes}. On a "
            "machine without GPUs, launch with ACCELERATE_USE_CPU=1 (e.g. `ACCELERATE_USE_CPU=1 torchrun "
            "--nproc_per_node 2 train.py ...`) for data-parallel training over CPU processes."
        )


# ---------------------------------------------------------------------------------------------------------------- data


def load_pretraining_data(args, config: BarcodeMAEConfig, log) -> tuple:
    """Read, clean (strip trailing N, truncate), drop too-short barcodes (counted), deduplicate, hold out validation."""
    splits = None if args.splits == ["all"] else args.splits
    try:
        data = load_barcodes(args.data_file, splits=splits, sequence_column=args.sequence_column,
                             on_bad_sequence=args.on_bad_sequence)  # fmt: skip
    except ValueError as error:
        if "select splits" not in str(error):
            raise
        raise UserError(f"{error}; pass --splits all to train on every row") from None
    rows = len(data)
    data, too_short = prepare_barcodes(data, config.max_sequence_length, min_length=config.k_mer)
    log(f"{args.data_file}: {rows} rows in {', '.join(args.splits)}; {too_short} shorter than one {config.k_mer}-mer "
        f"after stripping N dropped; {len(data)} unique barcodes")  # fmt: skip
    if len(data) < 2:
        raise UserError(f"{args.data_file}: {len(data)} unique barcode(s): too few to train and validate on")
    size = args.validation_size
    num_validation = int(size) if size >= 1 else max(1, round(size * len(data)))
    num_validation = min(num_validation, args.max_validation_sequences, len(data) - 1)
    split = data.train_test_split(test_size=num_validation, seed=args.seed, shuffle=True)
    return split["train"].select_columns(["sequence"]), split["test"].select_columns(["sequence"])


class OffsetBarcodes(torch.utils.data.Dataset):
    """Barcodes, each starting at a random offset 0..k-1 drawn from (seed, epoch, index): the same on resume.

    With `views=2` an item is the barcode from two different offsets (where it is long enough to have two).
    """

    def __init__(self, data, k: int, seed: int, views: int = 1):
        self.data, self.k, self.seed, self.views, self.epoch = data, k, seed, views, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> str | tuple[str, str]:
        sequence = self.data[index]["sequence"]
        high = min(self.k, len(sequence) - self.k + 1)  # keep at least one complete k-mer
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.views == 1:
            return sequence[int(rng.integers(high)) :]
        offsets = rng.choice(high, 2, replace=False) if high > 1 else (0, 0)
        return sequence[int(offsets[0]) :], sequence[int(offsets[1]) :]


class EpochSampler(torch.utils.data.Sampler):
    """A permutation seeded by (seed, epoch): resuming mid-epoch sees the same order, without global RNG."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist())


def make_collate(tokenizer: BarcodeMAETokenizer, max_tokens: int, targets: Callable | None = None):
    """Tokenize a batch of barcodes, or of (view, second view) pairs into `input_ids` and `second_view_*`; with
    `targets` (`identity_batches.teacher_matrix`), add the batch's distillation targets as `identity_targets`."""

    def tokenize(sequences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenizer(sequences, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]

    def collate(items: list) -> dict:
        if isinstance(items[0], str):
            input_ids, attention_mask = tokenize(items)
            batch = {"input_ids": input_ids, "attention_mask": attention_mask}
            return {**batch, "identity_targets": targets(items)} if targets is not None else batch
        input_ids, attention_mask = tokenize([first for first, _ in items])
        second_ids, second_mask = tokenize([second for _, second in items])
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "second_view_input_ids": second_ids, "second_view_attention_mask": second_mask}  # fmt: skip

    return collate


class TrainingBatches:
    """The training loader and what an epoch sets: `set_epoch(e)` reseeds the order and the offsets.

    Plain batches of `OffsetBarcodes` in an `EpochSampler` order; with identity distillation, batches of anchors
    and their k-mer neighbours (`NeighbourBatchSampler`); with a contrastive term, two offset views per barcode.
    """

    def __init__(self, train_data, tokenizer, config: BarcodeMAEConfig, args):
        self.dataset = OffsetBarcodes(train_data, config.k_mer, args.seed, views=2 if config.contrastive_weight > 0 else 1)
        targets = teacher_matrix(config.distillation_teacher) if config.identity_distillation_weight > 0 else None
        if targets is not None:
            table = kmer_neighbour_table(train_data["sequence"], neighbours=args.identity_neighbour_pool)
            self.sampler = NeighbourBatchSampler(table, args.per_device_train_batch_size, args.identity_neighbours,
                                                 args.seed)  # fmt: skip
            batching = {"batch_sampler": self.sampler}
        else:
            self.sampler = EpochSampler(len(self.dataset), args.seed)
            batching = {"batch_size": args.per_device_train_batch_size, "sampler": self.sampler, "drop_last": False}
        self.loader = torch.utils.data.DataLoader(
            self.dataset, **batching, collate_fn=make_collate(tokenizer, config.max_tokens, targets),
            num_workers=args.dataloader_num_workers,
            generator=torch.Generator().manual_seed(args.seed),  # keeps the loader off the global RNG (exact resume)
        )  # fmt: skip

    def set_epoch(self, epoch: int) -> None:
        self.sampler.epoch = self.dataset.epoch = epoch


def make_validation_loader(data, tokenizer, config, args) -> torch.utils.data.DataLoader:
    """Fixed batches, each with fixed masking noise (one row per barcode, seeded): comparable across runs."""
    generator = torch.Generator().manual_seed(args.seed + 1)
    noise = torch.rand(len(data), config.max_tokens, generator=generator)
    items = [(sequence, noise[index]) for index, sequence in enumerate(data["sequence"])]
    collate = make_collate(tokenizer, config.max_tokens)

    def collate_with_noise(batch):
        out = collate([sequence for sequence, _ in batch])
        out["noise"] = torch.stack([row for _, row in batch])[:, : out["input_ids"].shape[1]]
        return out

    return torch.utils.data.DataLoader(items, batch_size=args.per_device_eval_batch_size, collate_fn=collate_with_noise)


@torch.no_grad()
def validate_masked_tokens(model, loader, accelerator) -> dict:
    """Masked-token loss and accuracy over the validation set, with its fixed noise (not the protocol's evaluate)."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    for batch in loader:
        with accelerator.autocast():
            out = model(**batch)
        rows = out.mask.nonzero()[:, 0]  # the sequence of each scored token
        losses = F.cross_entropy(out.logits.float(), out.labels, reduction="none")
        per_sequence = torch.zeros(len(batch["input_ids"]), 3, device=losses.device, dtype=torch.float64)
        per_sequence[:, 0].index_add_(0, rows, losses.double())
        per_sequence[:, 1].index_add_(0, rows, (out.logits.argmax(-1) == out.labels).double())
        per_sequence[:, 2].index_add_(0, rows, torch.ones_like(losses, dtype=torch.float64))
        totals += accelerator.gather_for_metrics(per_sequence).sum(0).cpu()  # drops the duplicates of even batches
    model.train()
    count = max(totals[2].item(), 1.0)
    return {"val_loss": totals[0].item() / count, "val_masked_accuracy": totals[1].item() / count,
            "val_masked_tokens": int(totals[2].item())}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ optimisation


def learning_rate(args, num_processes: int) -> float:
    """--learning_rate, times global batch / 256 with --scale_lr."""
    return args.learning_rate * global_batch_size(args, num_processes) / 256 if args.scale_lr else args.learning_rate


def global_batch_size(args, num_processes: int) -> int:
    """Sequences per optimizer step: per device x processes x accumulation."""
    return args.per_device_train_batch_size * num_processes * args.gradient_accumulation_steps


def make_optimizer(model, args, lr: float, accelerator) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices, not on biases, LayerNorm gains or embeddings."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (decay if parameter.ndim >= 2 and "embeddings" not in name else no_decay).append(parameter)
    # Fused AdamW: one kernel over all parameters (3x faster than foreach on CPU); not with sharded (FSDP) params.
    fused = accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(args.adam_beta1, args.adam_beta2), fused=fused and accelerator.device.type in ("cpu", "cuda"),
    )  # fmt: skip


def make_scheduler(args, optimizer, total_steps: int):
    """The learning-rate schedule over `total_steps` scheduler steps (the prepared scheduler steps once per process)."""
    if args.lr_scheduler == "onecycle":  # torch's defaults, as the reference implementation uses them
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, [group["lr"] for group in optimizer.param_groups],
                                                   total_steps=total_steps)  # fmt: skip
    return get_cosine_schedule_with_warmup(optimizer, round(args.warmup_ratio * total_steps), total_steps)


# ---------------------------------------------------------------------------------------------------------- checkpoints


def list_checkpoints(output_dir: Path) -> list[Path]:
    """output_dir/checkpoints/step_N, oldest first."""
    folders = [path for path in (Path(output_dir) / "checkpoints").glob("step_*") if path.name[5:].isdigit()]
    return sorted(folders, key=lambda path: int(path.name[5:]))


def find_checkpoint(resume: str, output_dir: Path) -> Path | None:
    """`latest`: the newest checkpoint (None if there is none); else `resume` itself, which must be a checkpoint."""
    if resume == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {resume}: not a checkpoint folder (no trainer_state.json)")
    return path


class Checkpoints:
    """The run's checkpoints in output_dir/checkpoints/step_N: atomic saves, the newest `keep` kept, resume.

    `run_state` (batch sizes, processes, barcodes, steps) is saved with each one; resuming with other values warns,
    since the step -> batch arithmetic assumes the batches of the interrupted run.
    """

    def __init__(self, accelerator, output_dir: Path, keep: int, run_state: dict, log):
        self.accelerator, self.output_dir, self.keep, self.run_state, self.log = (
            accelerator, Path(output_dir), keep, run_state, log)  # fmt: skip

    def save(self, step: int) -> None:
        """accelerator.save_state into a temporary folder, renamed to checkpoints/step_N once complete (atomic)."""
        accelerator = self.accelerator
        final = self.output_dir / "checkpoints" / f"step_{step}"
        temporary = self.output_dir / "checkpoints" / f".step_{step}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(temporary, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(temporary))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (temporary / "trainer_state.json").write_text(json.dumps({"step": step, **self.run_state}))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(temporary, final)
            if self.keep > 0:
                for old in list_checkpoints(self.output_dir)[: -self.keep]:
                    shutil.rmtree(old)
        accelerator.wait_for_everyone()

    def resume(self, resume: str | None, steps_per_epoch: int, gradient_accumulation_steps: int) -> tuple[int, int]:
        """Load the checkpoint `resume` names (`latest`, a folder, or None: none) into the prepared objects; return
        the steps it completed and the batches of its epoch to skip (0, 0 when starting from scratch)."""
        if not resume:
            return 0, 0
        checkpoint = find_checkpoint(resume, self.output_dir)
        if checkpoint is None:
            self.log(f"--resume_from_checkpoint latest: no checkpoint in {self.output_dir / 'checkpoints'}, "
                     "starting from scratch")  # fmt: skip
            return 0, 0
        self.accelerator.load_state(str(checkpoint))
        saved = json.loads((checkpoint / "trainer_state.json").read_text())
        step = saved["step"]
        changed = {key: (saved.get(key), value) for key, value in self.run_state.items() if saved.get(key) != value}
        if changed:
            self.log(f"warning: resuming with different settings (checkpoint, now): {changed}")
        self.log(f"resumed from {checkpoint} at step {step}")
        # Batches per epoch are a multiple of the accumulation except the last group of an epoch, which still steps.
        return step, (step % steps_per_epoch) * gradient_accumulation_steps


# -------------------------------------------------------------------------------------------------------------- logging

WINDOW_SUMS = ("loss", "masked_loss", "contrastive_loss", "profile_loss", "identity_loss", "steps", "correct", "masked")
OPTIONAL_TERMS = (("contrastive_loss", "contrastive_weight"), ("profile_loss", "profile_loss_weight"),
                  ("identity_loss", "identity_distillation_weight"))  # fmt: skip


class LoggingWindow:
    """Since the last log line: the `WINDOW_SUMS` as one tensor on the device (adding to it never waits for the
    device; the sums are read once per log line), the sequences seen, and the training time (pauses excluded)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(WINDOW_SUMS), dtype=torch.float64, device=self.device)
        self.sequences, self.start = 0, time.perf_counter()

    def add(self, out, sequences: int) -> None:
        """One forward pass's contribution, without a host sync."""
        zero = torch.zeros((), dtype=torch.float64, device=out.loss.device)
        optional = (out.contrastive_loss, out.profile_loss, out.identity_loss)
        terms = (out.loss, out.masked_loss * out.labels.numel(), *(zero if term is None else term for term in optional),
                 zero + 1, (out.logits.argmax(-1) == out.labels).sum(), zero + out.labels.numel())  # fmt: skip
        self.sums += torch.stack([term.detach().double() for term in terms])
        self.sequences += sequences

    @contextmanager
    def paused(self):
        """Time spent inside (validation, probes, checkpoints) does not count in seq/s."""
        pause = time.perf_counter()
        yield
        self.start += time.perf_counter() - pause

    def read(self, accelerator, config: BarcodeMAEConfig, step: int, epoch: float, lr: float) -> dict:
        """The log line (summed over processes), then a fresh window."""
        sums = dict(zip(WINDOW_SUMS, accelerator.reduce(self.sums, "sum").tolist()))
        masked = max(sums["masked"], 1.0)
        values = {"step": step, "epoch": epoch, "loss": sums["loss"] / sums["steps"],
                  "masked_loss": sums["masked_loss"] / masked, "masked_accuracy": sums["correct"] / masked, "lr": lr,
                  "seq_per_s": self.sequences / (time.perf_counter() - self.start)}  # fmt: skip
        for term, weight in OPTIONAL_TERMS:
            if getattr(config, weight) > 0:
                values[term] = sums[term] / sums["steps"]
        self.reset()
        return values


class MetricsLog:
    """metrics.jsonl in output_dir (main process), and the tracker (TensorBoard) when there is one."""

    def __init__(self, accelerator, output_dir: Path, report_to: str, args):
        self.accelerator, self.path, self.tracked = accelerator, Path(output_dir) / "metrics.jsonl", report_to != "none"
        if accelerator.is_main_process:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
        if self.tracked:
            accelerator.init_trackers("barcodemae", config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                            for k, v in vars(args).items()})  # fmt: skip

    def record(self, values: dict) -> None:
        if self.accelerator.is_main_process:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(values) + "\n")
        if self.tracked:
            self.accelerator.log({k: v for k, v in values.items() if k != "step"}, step=values["step"])

    def close(self) -> None:
        if self.tracked:
            self.accelerator.end_training()


class Probes:
    """--probe_file: 1-NN probes of the encoder's features every --probe_steps (main process; the others wait)."""

    def __init__(self, args, config: BarcodeMAEConfig, log):
        from barcodemae.feature_probes import FeatureProbe

        self.probe = FeatureProbe(args.probe_file, args.probe_keys, args.probe_queries, config.max_sequence_length,
                                  queries=args.probe_splits)
        self.every = args.checkpointing_steps if args.probe_steps is None else args.probe_steps
        log(f"probes {f'every {self.every} steps' if self.every else 'at the start and the end'} on {len(self.probe)} "
            f"barcodes of {args.probe_file} ({args.probe_splits} queries)")

    def due(self, step: int, last_step: bool) -> bool:
        return bool(self.every and step % self.every == 0) or last_step

    def run(self, accelerator, model, tokenizer, mixed_precision: str, step: int, metrics: MetricsLog, progress) -> None:
        """Probe the encoder, to metrics.jsonl and the progress bar."""
        if accelerator.is_main_process:
            precision = "bf16" if mixed_precision == "bf16" else "fp32"
            values = self.probe(accelerator.unwrap_model(model).barcodemae, tokenizer, precision)
            metrics.record({"step": step, **values})
            progress.set_postfix_str(f"genus 1-NN unseen {values['probe_genus_1nn_unseen']:.1f}, species 1-NN "
                                     f"{values['probe_species_1nn']:.1f}, PR {values['probe_participation_ratio']:.1f}")  # fmt: skip
        accelerator.wait_for_everyone()


# ---------------------------------------------------------------------------------------------------------------- export


def training_summary(args, steps: int, global_batch: int, lr: float, mixed_precision: str, processes: int) -> dict:
    """The resolved optimisation settings, for the model card and training_args.json."""
    return {"recipe": args.recipe, **({"started_from": Path(args.model_name_or_path).name}
                                      if args.model_name_or_path else {}),
            "optimizer_steps": steps, "global_batch_size": global_batch, "learning_rate": lr,
            "lr_scheduler": args.lr_scheduler, "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
            "adam_betas": [args.adam_beta1, args.adam_beta2], "max_grad_norm": args.max_grad_norm,
            "mixed_precision": mixed_precision, "seed": args.seed, "processes": processes}  # fmt: skip


def write_model_card(args, config, metrics: dict, data_summary: dict, training: dict) -> str:
    """The model card of the exported folder: resolved settings, the data file's name (no local paths)."""
    data_name = Path(args.data_file).name
    data = (
        f"`{data_name}`, splits {', '.join(args.splits)}: {data_summary['train']} unique barcodes for training, "
        f"{data_summary['validation']} held out for validation (cleaned, truncated to {config.max_sequence_length} "
        f"nt, identical barcodes kept once, random start offset 0..{config.k_mer - 1} per epoch"
        + ("; tokenized in the COI-5P reference frame)." if args.register_frame == "on" else ").")
    )  # fmt: skip
    dataset_id = args.dataset_id or ("bioscan-ml/BIOSCAN-5M" if "bioscan_5m" in data_name.lower() else None)
    location = args.push_to_hub or Path(args.output_dir).name
    return model_card(config, location, location, data, training, data_name, metrics, dataset_id=dataset_id,
                      register_frame=args.register_frame == "on")  # fmt: skip


PATH_ARGUMENTS = ("data_file", "model_config", "model_name_or_path", "output_dir", "probe_file", "resume_from_checkpoint")


def portable_arguments(args) -> dict:
    """The command-line arguments with local paths cut to their last component: an exported folder carries no path of
    the machine it was trained on (a Hub id or `latest` stays as it is)."""
    settings = dict(vars(args))
    for name in PATH_ARGUMENTS:
        value = settings.get(name)
        if isinstance(value, str) and (Path(value).is_absolute() or Path(value).exists()):
            settings[name] = Path(value).name
    return settings


def export(accelerator, model, tokenizer, config, args, metrics: dict, data_summary: dict, training: dict) -> None:
    """The Hub folder: weights, tokenizer, custom code, model card, training_args.json (every process must call it)."""
    output_dir = Path(args.output_dir)
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)  # gathers FSDP shards; every process must call it
    if accelerator.is_main_process:
        unwrapped.save_pretrained(output_dir, state_dict=state_dict, save_function=accelerator.save)
        tokenizer.save_pretrained(output_dir)
        (output_dir / "README.md").write_text(write_model_card(args, config, metrics, data_summary, training))
        settings = {**portable_arguments(args), **training}
        (output_dir / "training_args.json").write_text(json.dumps(settings, indent=2, default=str))
    accelerator.wait_for_everyone()


def push_to_hub(args) -> None:
    """Upload the exported folder (not its checkpoints) to --push_to_hub."""
    from huggingface_hub import create_repo, upload_folder

    repo = create_repo(args.push_to_hub, private=args.hub_private, exist_ok=True)
    upload_folder(repo_id=repo.repo_id, folder_path=args.output_dir, commit_message="BarcodeMAE pretraining (train.py)",
                  ignore_patterns=["checkpoints/**"])  # TensorBoard logs in runs/ are shown by the Hub  # fmt: skip
