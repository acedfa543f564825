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
This script parses the flags and runs the loop; the pieces it calls are in barcodemae/training.py.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning (read once, when torch loads OpenMP): with another job on one of two
# cores, spinning threads slow the step 2.4x, sleeping ones 1.4x (benchmarks/bench_threads.py, BENCHMARKS.md). Set by
# the script only, before torch loads: importing the library leaves the process's settings alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from accelerate.utils import ProjectConfiguration, set_seed  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from barcodemae import training  # noqa: E402
from barcodemae.data import BAD_SEQUENCE_POLICIES, FIXTURE  # noqa: E402
from barcodemae.errors import run_main  # noqa: E402
from barcodemae.recipes import DEFAULT_RECIPE, RECIPES, SIZE_PRESETS  # noqa: E402
from barcodemae.training import SIZE_FLAGS  # noqa: E402
from modeling_barcodemae import BarcodeMAEForPreTraining  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402


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
    objective.add_argument("--distillation_teacher", default=None,
                           help="targets of that term: identity (alignment identity, the default) or a non-learned "
                                "encoder spec whose cosine similarities are taught, e.g. kmer:6+aa:3")
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
    train.add_argument("--eval_steps", type=int, default=None,
                       help="validate every N steps and at the end; default: --checkpointing_steps (0: only at the end)")
    train.add_argument("--checkpointing_steps", type=int, default=250)
    train.add_argument("--save_total_limit", type=int, default=2, help="checkpoints kept (0 or less: all)")
    train.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None,
                       help="`latest` (the newest output_dir/checkpoints/step_N, if any) or a checkpoint folder")
    train.add_argument("--probe_file", default=None,
                       help="BIOSCAN-5M-layout file: every --probe_steps, 1-NN probes of the encoder's features on a "
                            "fixed subsample of its train keys and --probe_splits queries go to metrics.jsonl")
    train.add_argument("--probe_steps", type=int, default=None,
                       help="default: --checkpointing_steps (0: only before the first step and after the last)")
    train.add_argument("--probe_splits", choices=("val", "test"), default="val",
                       help="probe queries: val / val_unseen (where recipes are chosen) or test / test_unseen")
    train.add_argument("--probe_keys", type=int, default=4000, help="train barcodes in the probe subsample")
    train.add_argument("--probe_queries", type=int, default=1000, help="seen- and unseen-species query barcodes, each")
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


def main(argv: list[str] | None = None) -> dict:
    # Set up: flags, devices and processes, seed.
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    mixed_precision = training.resolve_mixed_precision(args.mixed_precision)
    report_to = training.resolve_report_to(args.report_to)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=None if report_to == "none" else report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "runs")),
    )
    log = accelerator.print
    training.check_world_size(accelerator)
    set_seed(args.seed)

    # Build: configuration, tokenizer, data, model, optimizer, schedule.
    config = training.build_config(args)
    tokenizer = BarcodeMAETokenizer(k_mer=config.k_mer, max_sequence_length=config.max_sequence_length,
                                    register_frame=args.register_frame == "on")  # fmt: skip
    with accelerator.main_process_first():  # the main process builds the `datasets` cache, the others read it
        train_data, validation_data = training.load_pretraining_data(args, config, log)
    data_summary = {"train": len(train_data), "validation": len(validation_data)}
    batches = training.TrainingBatches(train_data, tokenizer, config, args)
    validation_loader = training.make_validation_loader(validation_data, tokenizer, config, args)
    if args.model_name_or_path:
        model, loading = BarcodeMAEForPreTraining.from_pretrained(args.model_name_or_path, config=config,
                                                                  output_loading_info=True)  # fmt: skip
        log(f"started from {args.model_name_or_path}" + (f"; newly initialised: {len(loading['missing_keys'])} tensors "
            "(a decoder or head the checkpoint lacks)" if loading["missing_keys"] else ""))  # fmt: skip
    else:
        model = BarcodeMAEForPreTraining(config)
    attn_implementation = training.resolve_attn_implementation(args.attn_implementation, accelerator.device)
    model.set_attn_implementation(attn_implementation)  # not saved: the exported model loads with the default (sdpa)
    global_batch = training.global_batch_size(args, accelerator.num_processes)
    learning_rate = training.learning_rate(args, accelerator.num_processes)
    optimizer = training.make_optimizer(model, args, learning_rate, accelerator)
    model, optimizer, train_loader, validation_loader = accelerator.prepare(
        model, optimizer, batches.loader, validation_loader
    )
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    max_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
    scheduler = accelerator.prepare(training.make_scheduler(args, optimizer, max_steps * accelerator.num_processes))
    metrics = training.MetricsLog(accelerator, output_dir, report_to, args)

    # Resume: the optimizer, scheduler, RNG and accumulation states of a checkpoint, and where in its epoch it was.
    run_state = {"per_device_train_batch_size": args.per_device_train_batch_size, "num_processes": accelerator.num_processes,
                 "gradient_accumulation_steps": args.gradient_accumulation_steps, "train_barcodes": len(train_data),
                 "max_steps": max_steps}  # fmt: skip
    checkpoints = training.Checkpoints(accelerator, output_dir, args.save_total_limit, run_state, log)
    completed_steps, skip_batches = checkpoints.resume(args.resume_from_checkpoint, steps_per_epoch,
                                                       args.gradient_accumulation_steps)  # fmt: skip
    log(f"model: {config.objective}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; "
        f"{data_summary['train']} training / {data_summary['validation']} validation barcodes; {max_steps} steps of "
        f"{global_batch} sequences ({accelerator.num_processes} processes); lr {learning_rate:g}; "
        f"mixed precision {mixed_precision}; {attn_implementation} attention")  # fmt: skip

    # Loop: steps, a log line every --logging_steps, validation, probes and checkpoints on their schedules.
    progress = tqdm(total=max_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                    desc="pretraining", dynamic_ncols=True)  # fmt: skip
    probes = training.Probes(args, config, log) if args.probe_file else None
    if probes is not None and completed_steps == 0:
        probes.run(accelerator, model, tokenizer, mixed_precision, 0, metrics, progress)  # the untrained encoder
    started, first_step = time.perf_counter(), completed_steps
    model.train()
    window = training.LoggingWindow(accelerator.device)
    eval_every = args.checkpointing_steps if args.eval_steps is None else args.eval_steps  # 0: only at the end
    last_eval = None
    epoch = completed_steps // steps_per_epoch
    last_step = completed_steps >= max_steps  # resumed at the very end
    while not last_step:
        batches.set_epoch(epoch)
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
            window.add(out, len(batch["input_ids"]) * accelerator.num_processes)
            if not accelerator.sync_gradients:
                continue
            completed_steps += 1
            progress.update(1)
            last_step = completed_steps >= max_steps
            if completed_steps % args.logging_steps == 0 or last_step:
                values = window.read(accelerator, config, completed_steps, round(completed_steps / steps_per_epoch, 4),
                                     scheduler.get_last_lr()[0])  # fmt: skip
                progress.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['masked_accuracy']:.3f}",
                                     lr=f"{values['lr']:.2e}", seq_s=f"{values['seq_per_s']:.1f}")  # fmt: skip
                metrics.record(values)
                if args.max_train_minutes is not None and not last_step:  # every process stops at the same step
                    over = torch.tensor(float(time.perf_counter() - started > 60 * args.max_train_minutes),
                                        device=accelerator.device)  # fmt: skip
                    last_step = bool(accelerator.reduce(over, "max").item())
                    if last_step:
                        log(f"\n--max_train_minutes {args.max_train_minutes:g} reached at step {completed_steps}")
            with window.paused():
                if (eval_every > 0 and completed_steps % eval_every == 0) or last_step:
                    last_eval = {"step": completed_steps,
                                 **training.validate_masked_tokens(model, validation_loader, accelerator)}  # fmt: skip
                    metrics.record(last_eval)
                    log(f"\nstep {completed_steps}: validation loss {last_eval['val_loss']:.4f}, "
                        f"masked accuracy {last_eval['val_masked_accuracy']:.4f}")  # fmt: skip
                if probes is not None and probes.due(completed_steps, last_step):
                    probes.run(accelerator, model, tokenizer, mixed_precision, completed_steps, metrics, progress)
                if args.checkpointing_steps > 0 and completed_steps % args.checkpointing_steps == 0 and not last_step:
                    checkpoints.save(completed_steps)
            if last_step:
                break
        epoch += 1
    progress.close()
    if last_eval is None:  # resumed at the very end
        last_eval = {"step": completed_steps, **training.validate_masked_tokens(model, validation_loader, accelerator)}
    elapsed = time.perf_counter() - started
    log(f"trained {completed_steps - first_step} steps in {elapsed / 60:.1f} min (probes and validation included): "
        f"{(completed_steps - first_step) * global_batch / max(elapsed, 1e-9):.1f} sequences/s "
        f"({torch.get_num_threads()} CPU threads)")  # fmt: skip

    # Export: the Hub folder (and the Hub, with --push_to_hub).
    summary = training.training_summary(args, completed_steps, global_batch, learning_rate, mixed_precision,
                                        accelerator.num_processes)  # fmt: skip
    training.export(accelerator, model, tokenizer, config, args, last_eval, data_summary, summary)
    log(f"exported to {output_dir} (AutoModel.from_pretrained({str(output_dir)!r}, trust_remote_code=True))")
    metrics.close()
    if args.push_to_hub and accelerator.is_main_process:
        training.push_to_hub(args)
        log(f"pushed to https://huggingface.co/{args.push_to_hub}")
    return last_eval


def cli(argv: list[str] | None = None) -> int:
    """The command: `main` with its metrics dropped, for `run_main` (an `error:` line for bad input, no traceback)."""
    main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(cli))
