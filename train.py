"""Pretrain BarcodeMAE (or the MLM baseline) on DNA barcodes, from one CPU to many GPUs, and export a Hub folder.

    python train.py                                   # small model, bundled fixture, CPU, a few minutes
    python train.py --data_file BIOSCAN_5M_Insect_Dataset_metadata.csv --model_size paper \\
        --per_device_train_batch_size 128 --num_train_epochs 35 --output_dir outputs/barcodemae-paper
    accelerate launch --multi_gpu --num_processes 8 train.py --data_file ... --model_size paper --scale_lr
    python train.py --resume_from_checkpoint latest   # continue an interrupted run (same flags)

Data: barcodes of the `--splits` (default pretrain + other_heldout) of a BIOSCAN-5M metadata CSV, or any CSV / TSV /
parquet / FASTA file (see barcodemae/data.py); trailing N stripped, truncated to 660 nt, identical barcodes kept once,
a small held-out validation set. Each epoch each barcode starts at a random offset 0..k-1 (augmentation); the
tokenizer registers every barcode to the COI-5P reference frame (`--register_frame`, default on), so the offset only
decides whether the first k-mer is kept, never the frame, and the exported tokenizer registers barcodes the same way.
Model: `--model_size small` (default: 4+4 layers x 256, decoder as deep as the encoder as in the paper; a few
minutes on a CPU) or `paper` (6+6 x 768, the BarcodeMAEConfig defaults), `--model_config config.json` and/or size
flags on top.
Output (`--output_dir`): config.json, model.safetensors, tokenizer files, the custom code, README.md (model card),
metrics.jsonl, checkpoints/step_N. `AutoModel.from_pretrained(output_dir, trust_remote_code=True)` loads it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning (read once, when torch loads OpenMP): with another job on one of two
# cores, spinning threads slow the step 2.4x, sleeping ones 1.4x (benchmarks/bench_threads.py, BENCHMARKS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import get_cosine_schedule_with_warmup  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from barcodemae.data import BAD_SEQUENCE_POLICIES, load_barcodes, prepare_barcodes  # noqa: E402
from barcodemae.encoders import auto_precision  # noqa: E402
from barcodemae.errors import UserError, run_main  # noqa: E402
from barcodemae.identity_batches import NeighbourBatchSampler, identity_matrix, kmer_neighbour_table  # noqa: E402
from barcodemae.model_card import model_card  # noqa: E402
from barcodemae.recipes import DEFAULT_RECIPE, RECIPES, SIZE_PRESETS  # noqa: E402
from configuration_barcodemae import BarcodeMAEConfig  # noqa: E402
from modeling_barcodemae import BarcodeMAEForPreTraining  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "data" / "bioscan_fixture.csv.gz"
SIZE_FLAGS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "decoder_hidden_size", "decoder_num_hidden_layers", "decoder_num_attention_heads", "decoder_intermediate_size",
)  # fmt: skip
OBJECTIVE_FLAGS = (
    "objective", "k_mer", "max_sequence_length", "mask_ratio", "pooling_layer",
    "masked_loss_weight", "hamming_soft_targets", "contrastive_weight", "contrastive_temperature", "profile_loss_weight",
    "identity_distillation_weight", "identity_temperature", "identity_embedding_temperature",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data_file", default=str(FIXTURE), help="CSV/TSV/parquet/FASTA (.gz ok); default: the fixture")
    data.add_argument("--splits", nargs="+", default=["pretrain", "other_heldout"],
                      help="values of the `split` column to train on; `all` = every row (files without `split`)")
    data.add_argument("--sequence_column", default=None, help="default: dna_barcode, nucleotides or sequence")
    data.add_argument("--on_bad_sequence", choices=BAD_SEQUENCE_POLICIES, default="error",
                      help="a barcode with a non-nucleotide character: stop with an error naming it, or skip it")
    data.add_argument("--validation_size", type=float, default=0.02,
                      help="held-out barcodes: a fraction (<1) or a count (>=1), at most --max_validation_sequences")
    data.add_argument("--max_validation_sequences", type=int, default=2000)
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    model = parser.add_argument_group("model")
    model.add_argument("--model_size", choices=sorted(SIZE_PRESETS), default="small",
                       help="size preset; ignored when --model_config is given (default: small)")
    model.add_argument("--model_config", default=None, help="config.json (BarcodeMAEConfig fields) to start from")
    model.add_argument("--model_name_or_path", default=None,
                       help="continue pretraining from these weights: a train.py output, a converted original "
                            "checkpoint, or a Hub id (a decoder it lacks starts fresh); objective flags still apply")
    model.add_argument("--objective", choices=("mae", "mlm"), default=None, help="default: mae (or the config's)")
    model.add_argument("--k_mer", type=int, default=None)
    model.add_argument("--max_sequence_length", type=int, default=None, help="nucleotides kept (default 660)")
    model.add_argument("--mask_ratio", type=float, default=None, help="default 0.5")
    model.add_argument("--register_frame", choices=("on", "off"), nargs="?", const="on", default="on",
                       help="tokenize barcodes registered to the COI-5P reference frame (saved with the tokenizer; "
                            "default on: RESULTS.md, 'Reading frames'); off: k-mers from each barcode's first base")
    model.add_argument("--pooling_layer", type=int, default=None, help="hidden state pooled by the encoder (default -1)")
    objective = parser.add_argument_group("objective (BarcodeMAEConfig fields; defaults: those of --recipe)")
    objective.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                           help="named objective + optimiser settings (barcodemae/recipes.py); flags given override it "
                                f"(default: {DEFAULT_RECIPE})")
    objective.add_argument("--masked_loss_weight", type=float, default=None,
                           help="weight w of the masked k-mers; visible ones get 1 - w (default 1.0: masked only)")
    objective.add_argument("--hamming_soft_targets", action="store_true", default=None,
                           help="soft k-mer targets softmax(-Hamming distance) (the reference's --pretrain_levenshtein)")
    objective.add_argument("--contrastive_weight", type=float, default=None,
                           help="weight of the InfoNCE term between two reading-frame views (ours; default 0: off)")
    objective.add_argument("--contrastive_temperature", type=float, default=None, help="default 0.1")
    objective.add_argument("--profile_loss_weight", type=float, default=None,
                           help="weight of the masked-profile term: pooled visible features predict the whole "
                                "barcode's overlapping k-mer frequencies (ours; default 0: off)")
    objective.add_argument("--identity_distillation_weight", type=float, default=None,
                           help="weight of the identity-distillation term: embedding cosine learns to rank the batch "
                                "as alignment identity does (ours; default 0: off); batches then hold k-mer neighbours")
    objective.add_argument("--identity_temperature", type=float, default=None, help="default 0.01")
    objective.add_argument("--identity_embedding_temperature", type=float, default=None, help="default 0.05")
    objective.add_argument("--identity_neighbours", type=int, default=7,
                           help="with identity distillation: barcodes each anchor brings into its batch, drawn from "
                                "its --identity_neighbour_pool nearest by 6-mer profile")
    objective.add_argument("--identity_neighbour_pool", type=int, default=32)
    for flag in SIZE_FLAGS:
        model.add_argument(f"--{flag}", type=int, default=None)
    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="outputs/barcodemae-small")
    train.add_argument("--num_train_epochs", type=float, default=8)
    train.add_argument("--max_steps", type=int, default=-1, help="optimizer steps; overrides --num_train_epochs")
    train.add_argument("--max_train_minutes", type=float, default=None,
                       help="stop at the first logging step after this much training time, then validate, probe and "
                            "export as at the end (the schedule stays planned for --max_steps)")
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=64)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=5e-4)
    train.add_argument("--scale_lr", action="store_true",
                       help="learning rate x global batch size / 256 (global = per device x processes x accumulation)")
    train.add_argument("--weight_decay", type=float, default=0.01)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.98)
    train.add_argument("--max_grad_norm", type=float, default=1.0)
    train.add_argument("--warmup_ratio", type=float, default=0.05, help="cosine schedule only")
    train.add_argument("--lr_scheduler", choices=("cosine", "onecycle"), default="cosine",
                       help="linear warmup + cosine decay, or torch's OneCycleLR with its defaults (the reference's)")
    train.add_argument("--mixed_precision", choices=("auto", "no", "bf16", "fp16"), default="auto",
                       help="auto: bf16 where the hardware has it (CUDA bf16, or a CPU with AMX / AVX512-BF16), else no")
    train.add_argument("--attn_implementation", choices=("auto", "eager", "sdpa"), default="auto",
                       help="auto: eager on CPU (its backward is faster there than SDPA's, see BENCHMARKS.md), else sdpa")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--logging_steps", type=int, default=10)
    train.add_argument("--eval_steps", type=int, default=None, help="default: at every checkpoint and at the end")
    train.add_argument("--checkpointing_steps", type=int, default=250)
    train.add_argument("--save_total_limit", type=int, default=2, help="checkpoints kept (0 or less: all)")
    train.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None,
                       help="`latest` (the newest output_dir/checkpoints/step_N, if any) or a checkpoint folder")
    train.add_argument("--probe_file", default=None,
                       help="BIOSCAN-5M-layout file: every --probe_steps, 1-NN probes of the encoder's features on a "
                            "fixed subsample of its train / test / test_unseen splits go to metrics.jsonl")
    train.add_argument("--probe_steps", type=int, default=None,
                       help="default: --checkpointing_steps (0: only before the first step and after the last)")
    train.add_argument("--probe_keys", type=int, default=4000, help="train barcodes in the probe subsample")
    train.add_argument("--probe_queries", type=int, default=1000, help="test and test_unseen barcodes, each")
    train.add_argument("--report_to", choices=("auto", "tensorboard", "none"), default="auto",
                       help="auto: TensorBoard when it is installed")
    hub = parser.add_argument_group("hub")
    hub.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="upload the exported folder to this repo")
    hub.add_argument("--hub_private", action="store_true")
    hub.add_argument("--dataset_id", default=None,
                     help="Hub dataset id for the model card (default: bioscan-ml/BIOSCAN-5M for BIOSCAN-5M files)")
    recipe = parser.parse_known_args(argv)[0].recipe
    parser.set_defaults(**RECIPES[recipe])  # the recipe's values, under any flag given explicitly
    args = parser.parse_args(argv)
    if args.gradient_accumulation_steps < 1 or args.per_device_train_batch_size < 1:
        parser.error("batch size and gradient accumulation steps must be positive")
    if args.validation_size <= 0:
        parser.error("--validation_size must be positive")
    if args.model_name_or_path and (args.model_config or any(getattr(args, flag) is not None for flag in SIZE_FLAGS)):
        parser.error("--model_name_or_path brings its own size: drop --model_config and the size flags")
    return args


def build_config(args: argparse.Namespace) -> BarcodeMAEConfig:
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


def resolve_mixed_precision(choice: str) -> str:
    """`auto`: bf16 where it is fast (measured in benchmarks/bench_pretraining.py: on CPUs only with bf16
    instructions), else no."""
    if choice != "auto":
        return choice
    return "bf16" if auto_precision() == "bf16" else "no"


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


def make_collate(tokenizer: BarcodeMAETokenizer, max_tokens: int, identity_targets: bool = False):
    """Tokenize a batch of barcodes, or of (view, second view) pairs into `input_ids` and `second_view_*`; with
    `identity_targets`, add the barcodes' alignment identities (for identity distillation)."""

    def tokenize(sequences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenizer(sequences, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]

    def collate(items: list) -> dict:
        if isinstance(items[0], str):
            input_ids, attention_mask = tokenize(items)
            batch = {"input_ids": input_ids, "attention_mask": attention_mask}
            return {**batch, "identity_targets": identity_matrix(items)} if identity_targets else batch
        input_ids, attention_mask = tokenize([first for first, _ in items])
        second_ids, second_mask = tokenize([second for _, second in items])
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "second_view_input_ids": second_ids, "second_view_attention_mask": second_mask}  # fmt: skip

    return collate


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
def evaluate(model, loader, accelerator) -> dict:
    """Masked-token loss and accuracy over the validation set, with its fixed noise."""
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


# ---------------------------------------------------------------------------------------------------------- checkpoints


def list_checkpoints(output_dir: Path) -> list[Path]:
    folders = [path for path in (output_dir / "checkpoints").glob("step_*") if path.name[5:].isdigit()]
    return sorted(folders, key=lambda path: int(path.name[5:]))


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, save_total_limit: int, run_state: dict) -> None:
    """accelerator.save_state into a temporary folder, renamed to checkpoints/step_N once complete (atomic)."""
    final = output_dir / "checkpoints" / f"step_{step}"
    temporary = output_dir / "checkpoints" / f".step_{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / "trainer_state.json").write_text(json.dumps({"step": step, **run_state}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        if save_total_limit > 0:
            for old in list_checkpoints(output_dir)[:-save_total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()


def find_checkpoint(resume: str, output_dir: Path) -> Path | None:
    if resume == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {resume}: not a checkpoint folder (no trainer_state.json)")
    return path


# ---------------------------------------------------------------------------------------------------------------- export


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


def export(accelerator, model, tokenizer, config, args, metrics: dict, data_summary: dict, training: dict) -> None:
    output_dir = Path(args.output_dir)
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)  # gathers FSDP shards; every process must call it
    if accelerator.is_main_process:
        unwrapped.save_pretrained(output_dir, state_dict=state_dict, save_function=accelerator.save)
        tokenizer.save_pretrained(output_dir)
        (output_dir / "README.md").write_text(write_model_card(args, config, metrics, data_summary, training))
        (output_dir / "training_args.json").write_text(json.dumps({**vars(args), **training}, indent=2, default=str))
    accelerator.wait_for_everyone()


def push_to_hub(args) -> None:
    from huggingface_hub import create_repo, upload_folder

    repo = create_repo(args.push_to_hub, private=args.hub_private, exist_ok=True)
    upload_folder(repo_id=repo.repo_id, folder_path=args.output_dir, commit_message="BarcodeMAE pretraining (train.py)",
                  ignore_patterns=["checkpoints/**"])  # TensorBoard logs in runs/ are shown by the Hub  # fmt: skip


# ------------------------------------------------------------------------------------------------------------------ main


def make_scheduler(args: argparse.Namespace, optimizer, total_steps: int):
    """The learning-rate schedule over `total_steps` scheduler steps (the prepared scheduler steps once per process)."""
    if args.lr_scheduler == "onecycle":  # torch's defaults, as the reference implementation uses them
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, [group["lr"] for group in optimizer.param_groups],
                                                   total_steps=total_steps)  # fmt: skip
    return get_cosine_schedule_with_warmup(optimizer, round(args.warmup_ratio * total_steps), total_steps)


WINDOW_SUMS = ("loss", "masked_loss", "contrastive_loss", "profile_loss", "identity_loss", "steps", "correct", "masked")


def new_logging_window(device: torch.device) -> dict:
    """Since the last log line: the `WINDOW_SUMS` as one tensor on the device (adding to it never waits for the
    device; the sums are read once per log line), the sequences seen, and when the window began."""
    return {"sums": torch.zeros(len(WINDOW_SUMS), dtype=torch.float64, device=device), "sequences": 0,
            "start": time.perf_counter()}  # fmt: skip


def step_sums(out) -> torch.Tensor:
    """One step's contribution to the window's `WINDOW_SUMS`, without a host sync."""
    zero = torch.zeros((), dtype=torch.float64, device=out.loss.device)
    optional = (out.contrastive_loss, out.profile_loss, out.identity_loss)
    terms = (out.loss, out.masked_loss * out.labels.numel(), *(zero if term is None else term for term in optional), zero + 1,
             (out.logits.argmax(-1) == out.labels).sum(), zero + out.labels.numel())  # fmt: skip
    return torch.stack([term.detach().double() for term in terms])


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    mixed_precision = resolve_mixed_precision(args.mixed_precision)
    report_to = args.report_to
    if report_to == "auto":
        installed = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
        report_to = "tensorboard" if installed else "none"
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=None if report_to == "none" else report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "runs")),
    )
    log = accelerator.print
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:  # each process would train a model of its own, all writing output_dir
        raise RuntimeError(
            f"{launched} processes were launched (WORLD_SIZE) but Accelerate set up {accelerator.num_processes}. On a "
            "machine without GPUs, launch with ACCELERATE_USE_CPU=1 (e.g. `ACCELERATE_USE_CPU=1 torchrun "
            "--nproc_per_node 2 train.py ...`) for data-parallel training over CPU processes."
        )
    set_seed(args.seed)
    config = build_config(args)
    tokenizer = BarcodeMAETokenizer(k_mer=config.k_mer, max_sequence_length=config.max_sequence_length,
                                    register_frame=args.register_frame == "on")  # fmt: skip

    with accelerator.main_process_first():  # the main process builds the `datasets` cache, the others read it
        train_data, validation_data = load_pretraining_data(args, config, log)
    data_summary = {"train": len(train_data), "validation": len(validation_data)}
    train_set = OffsetBarcodes(train_data, config.k_mer, args.seed, views=2 if config.contrastive_weight > 0 else 1)
    distill = config.identity_distillation_weight > 0
    if distill:  # batches of anchors and their k-mer neighbours
        table = kmer_neighbour_table(train_data["sequence"], neighbours=args.identity_neighbour_pool)
        sampler = NeighbourBatchSampler(table, args.per_device_train_batch_size, args.identity_neighbours, args.seed)
        batching = {"batch_sampler": sampler}
    else:
        sampler = EpochSampler(len(train_set), args.seed)
        batching = {"batch_size": args.per_device_train_batch_size, "sampler": sampler, "drop_last": False}
    train_loader = torch.utils.data.DataLoader(
        train_set, **batching, collate_fn=make_collate(tokenizer, config.max_tokens, identity_targets=distill),
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),  # keeps the loader off the global RNG (exact resume)
    )  # fmt: skip
    validation_loader = make_validation_loader(validation_data, tokenizer, config, args)

    if args.model_name_or_path:
        model, loading = BarcodeMAEForPreTraining.from_pretrained(args.model_name_or_path, config=config,
                                                                  output_loading_info=True)  # fmt: skip
        log(f"started from {args.model_name_or_path}" + (f"; newly initialised: {len(loading['missing_keys'])} tensors "
            "(a decoder or head the checkpoint lacks)" if loading["missing_keys"] else ""))  # fmt: skip
    else:
        model = BarcodeMAEForPreTraining(config)
    attn_implementation = args.attn_implementation
    if attn_implementation == "auto":
        attn_implementation = "eager" if accelerator.device.type == "cpu" else "sdpa"
    model.set_attn_implementation(attn_implementation)  # not saved: the exported model loads with the default (sdpa)
    global_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    learning_rate = args.learning_rate * global_batch / 256 if args.scale_lr else args.learning_rate
    decay, no_decay = [], []  # weight decay on the matrices, not on biases, LayerNorm gains or embeddings
    for name, parameter in model.named_parameters():
        (decay if parameter.ndim >= 2 and "embeddings" not in name else no_decay).append(parameter)
    # Fused AdamW: one kernel over all parameters (3x faster than foreach on CPU); not with sharded (FSDP) params.
    fused = accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate, betas=(args.adam_beta1, args.adam_beta2), fused=fused and accelerator.device.type in ("cpu", "cuda"),
    )  # fmt: skip
    model, optimizer, train_loader, validation_loader = accelerator.prepare(
        model, optimizer, train_loader, validation_loader
    )
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    max_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
    scheduler = accelerator.prepare(make_scheduler(args, optimizer, max_steps * accelerator.num_processes))
    if report_to != "none":
        accelerator.init_trackers("barcodemae", config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                        for k, v in vars(args).items()})  # fmt: skip

    run_state = {"per_device_train_batch_size": args.per_device_train_batch_size, "num_processes": accelerator.num_processes,
                 "gradient_accumulation_steps": args.gradient_accumulation_steps, "train_barcodes": len(train_data),
                 "max_steps": max_steps}  # fmt: skip
    completed_steps, resume_batches = 0, 0
    if args.resume_from_checkpoint:
        checkpoint = find_checkpoint(args.resume_from_checkpoint, output_dir)
        if checkpoint is None:
            log(f"--resume_from_checkpoint latest: no checkpoint in {output_dir / 'checkpoints'}, starting from scratch")
        else:
            accelerator.load_state(str(checkpoint))
            saved = json.loads((checkpoint / "trainer_state.json").read_text())
            completed_steps = saved["step"]
            changed = {key: (saved.get(key), value) for key, value in run_state.items() if saved.get(key) != value}
            if changed:  # the step -> batch arithmetic below assumes the same batches as the interrupted run
                log(f"warning: resuming with different settings (checkpoint, now): {changed}")
            resume_batches = completed_steps * args.gradient_accumulation_steps
            log(f"resumed from {checkpoint} at step {completed_steps}")
    # Batches per epoch are a multiple of the accumulation except the last group of an epoch, which still steps.
    start_epoch = completed_steps // steps_per_epoch
    skip_batches = (completed_steps % steps_per_epoch) * args.gradient_accumulation_steps if resume_batches else 0

    log(f"model: {config.objective}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; "
        f"{data_summary['train']} training / {data_summary['validation']} validation barcodes; {max_steps} steps of "
        f"{global_batch} sequences ({accelerator.num_processes} processes); lr {learning_rate:g}; "
        f"mixed precision {mixed_precision}; {attn_implementation} attention")  # fmt: skip
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = output_dir / "metrics.jsonl"

    def record(values: dict) -> None:
        if accelerator.is_main_process:
            with open(metrics_file, "a") as handle:
                handle.write(json.dumps(values) + "\n")
        if report_to != "none":
            accelerator.log({k: v for k, v in values.items() if k != "step"}, step=values["step"])

    progress = tqdm(total=max_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                    desc="pretraining", dynamic_ncols=True)  # fmt: skip
    probe = probe_every = None
    if args.probe_file:
        from barcodemae.feature_probes import FeatureProbe

        probe = FeatureProbe(args.probe_file, args.probe_keys, args.probe_queries, config.max_sequence_length)
        probe_every = args.probe_steps or args.checkpointing_steps
        log(f"probes {f'every {probe_every} steps' if probe_every else 'at the start and the end'} on {len(probe)} "
            f"barcodes of {args.probe_file}")

    def run_probe(step: int) -> None:
        """1-NN probes of the encoder (main process; the others wait), to metrics.jsonl and the progress bar."""
        if accelerator.is_main_process:
            precision = "bf16" if mixed_precision == "bf16" else "fp32"
            values = probe(accelerator.unwrap_model(model).barcodemae, tokenizer, precision)
            record({"step": step, **values})
            progress.set_postfix_str(f"genus 1-NN unseen {values['probe_genus_1nn_unseen']:.1f}, species 1-NN "
                                     f"{values['probe_species_1nn']:.1f}, PR {values['probe_participation_ratio']:.1f}")  # fmt: skip
        accelerator.wait_for_everyone()

    if probe is not None and completed_steps == 0:
        run_probe(0)  # the untrained encoder
    started, first_step = time.perf_counter(), completed_steps
    model.train()
    window = new_logging_window(accelerator.device)
    eval_every = args.eval_steps or args.checkpointing_steps
    last_eval = None
    epoch = start_epoch
    last_step = completed_steps >= max_steps  # resumed at the very end
    while not last_step:
        sampler.epoch = train_set.epoch = epoch
        loader = accelerator.skip_first_batches(train_loader, skip_batches) if skip_batches else train_loader
        skip_batches = 0
        for batch in loader:
            with accelerator.accumulate(model):
                out = model(**batch)
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window["sums"] += step_sums(out)
            window["sequences"] += len(batch["input_ids"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            completed_steps += 1
            progress.update(1)
            last_step = completed_steps >= max_steps
            if completed_steps % args.logging_steps == 0 or last_step:
                sums = dict(zip(WINDOW_SUMS, accelerator.reduce(window["sums"], "sum").tolist()))
                masked = max(sums["masked"], 1.0)
                values = {"step": completed_steps, "epoch": round(completed_steps / steps_per_epoch, 4),
                          "loss": sums["loss"] / sums["steps"], "masked_loss": sums["masked_loss"] / masked,
                          "masked_accuracy": sums["correct"] / masked, "lr": scheduler.get_last_lr()[0],
                          "seq_per_s": window["sequences"] / (time.perf_counter() - window["start"])}  # fmt: skip
                for term, weight in (("contrastive_loss", config.contrastive_weight),
                                     ("profile_loss", config.profile_loss_weight),
                                     ("identity_loss", config.identity_distillation_weight)):  # fmt: skip
                    if weight > 0:
                        values[term] = sums[term] / sums["steps"]
                progress.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['masked_accuracy']:.3f}",
                                     lr=f"{values['lr']:.2e}", seq_s=f"{values['seq_per_s']:.1f}")  # fmt: skip
                record(values)
                window = new_logging_window(accelerator.device)
                if args.max_train_minutes is not None and not last_step:  # every process stops at the same step
                    over = torch.tensor(float(time.perf_counter() - started > 60 * args.max_train_minutes),
                                        device=accelerator.device)  # fmt: skip
                    last_step = bool(accelerator.reduce(over, "max").item())
                    if last_step:
                        log(f"\n--max_train_minutes {args.max_train_minutes:g} reached at step {completed_steps}")
            checkpoint_now = args.checkpointing_steps > 0 and completed_steps % args.checkpointing_steps == 0
            pause = time.perf_counter()
            if (eval_every > 0 and completed_steps % eval_every == 0) or last_step:
                last_eval = {"step": completed_steps, **evaluate(model, validation_loader, accelerator)}
                record(last_eval)
                log(f"\nstep {completed_steps}: validation loss {last_eval['val_loss']:.4f}, "
                    f"masked accuracy {last_eval['val_masked_accuracy']:.4f}")  # fmt: skip
            if probe is not None and ((probe_every and completed_steps % probe_every == 0) or last_step):
                run_probe(completed_steps)
            if checkpoint_now and not last_step:
                save_checkpoint(accelerator, output_dir, completed_steps, args.save_total_limit, run_state)
            window["start"] += time.perf_counter() - pause  # evaluation and checkpoints do not count in seq/s
            if last_step:
                break
        epoch += 1
    progress.close()
    if last_eval is None:  # resumed at the very end
        last_eval = {"step": completed_steps, **evaluate(model, validation_loader, accelerator)}
    elapsed = time.perf_counter() - started
    trained = (completed_steps - first_step) * global_batch
    log(f"trained {completed_steps - first_step} steps in {elapsed / 60:.1f} min (probes and validation included): "
        f"{trained / max(elapsed, 1e-9):.1f} sequences/s "
        f"({torch.get_num_threads()} CPU threads)")  # fmt: skip
    training = {"recipe": args.recipe, **({"started_from": Path(args.model_name_or_path).name}
                                          if args.model_name_or_path else {}),
                "optimizer_steps": completed_steps, "global_batch_size": global_batch, "learning_rate": learning_rate,
                "lr_scheduler": args.lr_scheduler, "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
                "adam_betas": [args.adam_beta1, args.adam_beta2], "max_grad_norm": args.max_grad_norm,
                "mixed_precision": mixed_precision, "seed": args.seed, "processes": accelerator.num_processes}  # fmt: skip
    export(accelerator, model, tokenizer, config, args, last_eval, data_summary, training)
    log(f"exported to {output_dir} (AutoModel.from_pretrained({str(output_dir)!r}, trust_remote_code=True))")
    if report_to != "none":
        accelerator.end_training()
    if args.push_to_hub and accelerator.is_main_process:
        push_to_hub(args)
        log(f"pushed to https://huggingface.co/{args.push_to_hub}")
    return last_eval


def cli(argv: list[str] | None = None) -> int:
    """The command: `main` with its metrics dropped, for `run_main` (an `error:` line for bad input, no traceback)."""
    main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(cli))
