"""train.py: a tiny end-to-end run (train, checkpoint, export, reload through trust_remote_code), exact resume, bad input.

Runs train.py's `main(argv)` in this process (tiny model, a few steps); the exported folder is reloaded in a clean offline
interpreter that cannot import the repo.
"""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file

from barcodemae import training
from conftest import TRAIN_SCRIPT, run_clean_python, tiny_config_kwargs, train_script

script = train_script()

TINY = [f"--{key}={value}" for key, value in tiny_config_kwargs(decoder_num_hidden_layers=1).items()]


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate's state is a process-wide singleton: each main() call gets a fresh one."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def run(tmp_path, *flags, output="out"):
    argv = ["--output_dir", str(tmp_path / output), "--mixed_precision", "no", "--logging_steps", "2", *TINY, *flags]
    return script.main(argv)


@pytest.mark.slow
def test_end_to_end_checkpoint_export_reload(tmp_path, fixture_path, monkeypatch, capsys):
    calls = {}
    import huggingface_hub

    def create_repo(repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.setdefault("upload", kwargs))
    metrics = run(tmp_path, "--max_steps", "6", "--checkpointing_steps", "2", "--save_total_limit", "1",
                  "--per_device_train_batch_size", "16", "--push_to_hub", "someone/barcodemae-tiny")  # fmt: skip
    out = tmp_path / "out"
    assert "eager attention" in capsys.readouterr().out  # the faster one for training on a CPU
    assert metrics["step"] == 6 and metrics["val_masked_tokens"] > 0
    # Accuracy is correct tokens / masked tokens; 6 steps from a random init still predict the 4^6 k-mers about
    # uniformly, so the mean loss per masked token is near log(4096) (a sum, or a per-batch mean, would be far off).
    correct = metrics["val_masked_accuracy"] * metrics["val_masked_tokens"]
    assert correct == pytest.approx(round(correct), abs=1e-6)
    assert metrics["val_loss"] == pytest.approx(math.log(4**6), abs=0.5)
    # Checkpoints: step_2 was removed by --save_total_limit 1, no temporary folder left, none at the final step.
    assert [path.name for path in training.list_checkpoints(out)] == ["step_4"]
    assert not list((out / "checkpoints").glob(".*"))
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "modeling_barcodemae.py",
                 "configuration_barcodemae.py", "tokenization_barcodemae.py", "alphabet_barcodemae.py", "README.md",
                 "metrics.jsonl"):  # fmt: skip
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert set(config["auto_map"]) >= {"AutoConfig", "AutoModel", "AutoModelForPreTraining",
                                        "AutoModelForSequenceClassification"}  # fmt: skip
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: transformers" in card and "model-index:" in card
    assert f"value: {round(metrics['val_masked_accuracy'], 4)}" in card
    assert "## Limitations" in card and "license: mit" in card and "null" not in card and str(tmp_path) not in card
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "loss" in line] == [2, 4, 6]
    assert {"loss", "masked_accuracy", "lr", "seq_per_s"} <= set(lines[0])
    assert calls["create"][0] == "someone/barcodemae-tiny"
    assert calls["upload"]["folder_path"] == str(out) and "checkpoints/**" in calls["upload"]["ignore_patterns"]
    assert json.loads((out / "checkpoints" / "step_4" / "trainer_state.json").read_text())["step"] == 4

    sequence = "AACATTATATTTTATTTTTGGAATTTGAGCTGGAATAGTAGGAACTTCTTTAAGTTTATTAATTCGAGCTGAATTAGGAAACCC"
    result = run_clean_python(f"""
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForPreTraining, AutoTokenizer
folder = {str(out)!r}
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
inputs = tokenizer([{sequence!r}], return_tensors="pt")
encoder = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
print("pooled", tuple(encoder(**inputs).pooler_output.shape), encoder.config._attn_implementation)
model = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True).eval()
saved = load_file(folder + "/model.safetensors")
assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items()), "weights differ"
print("loss", float(model(**inputs).loss))
""", tmp_path)  # fmt: skip
    assert "pooled (1, 32) sdpa" in result.stdout and "loss" in result.stdout  # training's eager choice is not saved


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    """8 steps straight vs 3 steps + resume (mid-epoch, with gradient accumulation and dropout) to 8: equal bitwise.

    fp32 on CPU with a fixed thread count is deterministic, the data order and offsets are functions of
    (seed, epoch, index), and the RNG (dropout, masking), optimizer, scheduler and accumulation states are restored
    from the checkpoint, so the two runs do the same arithmetic: the tolerance is zero.
    """
    flags = ["--splits", "val", "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2",
             "--max_steps", "8", "--checkpointing_steps", "3", "--save_total_limit", "0"]  # fmt: skip
    run(tmp_path, *flags, output="straight")
    straight = tmp_path / "straight"
    assert [p.name for p in training.list_checkpoints(straight)] == ["step_3", "step_6"]
    # ~55 training barcodes, batch 8, accumulation 2: 4 steps per epoch, so step 3 is mid-epoch and 8 crosses one.
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(straight / "checkpoints" / "step_3", resumed / "checkpoints" / "step_3")
    run(tmp_path, *flags, "--resume_from_checkpoint", "latest", output="resumed")
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    differing = [key for key in a if not torch.equal(a[key], b[key])]
    assert not differing, differing
    steps = [json.loads(line)["step"] for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert min(steps) == 4 and max(steps) == 8  # the resumed run did steps 4..8 only
    # A path that is not a checkpoint is an error; `latest` without any checkpoint starts from scratch: the run
    # ends where the uninterrupted one did.
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        run(tmp_path, *flags, "--resume_from_checkpoint", str(tmp_path))
    run(tmp_path, *flags, "--resume_from_checkpoint", "latest", output="fresh")
    fresh = load_file(tmp_path / "fresh" / "model.safetensors")
    assert [key for key in a if not torch.equal(a[key], fresh[key])] == []


@pytest.mark.slow
def test_data_parallel_over_two_cpu_processes_and_resume(tmp_path):
    """`torchrun --nproc_per_node 2` with ACCELERATE_USE_CPU=1: real DDP (gloo), one RNG state per process in the
    checkpoint, and a resumed 2-process run ends with the same weights as the uninterrupted one (the all-reduce of
    two processes is order-independent, so zero tolerance again); --max_train_minutes stops both at one step."""
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}

    def launch(output: str, *extra: str) -> str:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   str(TRAIN_SCRIPT), "--output_dir", str(tmp_path / output), "--mixed_precision", "no",
                   "--splits", "val", *TINY, "--per_device_train_batch_size", "4", "--max_steps", "6",
                   "--checkpointing_steps", "3", "--save_total_limit", "0", *extra]  # fmt: skip
        result = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout + result.stderr

    log = launch("straight")
    assert "6 steps of 8 sequences (2 processes)" in log
    step_3 = tmp_path / "straight" / "checkpoints" / "step_3"
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in step_3.iterdir()}
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(step_3, tmp_path / "resumed" / "checkpoints" / "step_3")
    assert "resumed from" in launch("resumed", "--resume_from_checkpoint", "latest")
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert [key for key in a if not torch.equal(a[key], b[key])] == []
    # --max_train_minutes: the processes agree on the step to stop at (one stopping alone would hang the other).
    stopped = launch("stopped", "--max_train_minutes", "0", "--max_steps", "8", "--logging_steps", "2")
    assert "--max_train_minutes 0 reached at step 2" in stopped
    assert json.loads((tmp_path / "stopped" / "training_args.json").read_text())["optimizer_steps"] == 2
    # Validation over 2 processes = validation in 1 (same weights: learning rate 0). 21 barcodes in batches of 8 leave
    # an uneven last round, which Accelerate pads with duplicates that must not be counted.
    frozen = ["--learning_rate", "0", "--max_steps", "1", "--validation_size", "21", "--per_device_eval_batch_size", "8"]
    launch("frozen_two", *frozen)
    two = json.loads((tmp_path / "frozen_two" / "metrics.jsonl").read_text().splitlines()[-1])
    one = run(tmp_path, "--splits", "val", "--per_device_train_batch_size", "4", *frozen, output="frozen_one")
    assert two["val_masked_tokens"] == one["val_masked_tokens"] > 0
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-6)
    assert two["val_masked_accuracy"] == pytest.approx(one["val_masked_accuracy"], rel=1e-6)


def test_processes_that_accelerate_does_not_see_are_an_error(tmp_path, monkeypatch):
    """torchrun without GPUs and without ACCELERATE_USE_CPU: every process would train alone; refuse, say the fix."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="2 processes were launched.*ACCELERATE_USE_CPU=1"):
        run(tmp_path, "--splits", "val", "--max_steps", "1")


def test_build_config_presets_json_and_flags(tmp_path):
    paper = training.build_config(script.parse_args(["--model_size", "paper"]))
    assert (paper.num_hidden_layers, paper.hidden_size, paper.decoder_num_hidden_layers) == (6, 768, 6)
    small = training.build_config(script.parse_args([]))
    assert (small.num_hidden_layers, small.hidden_size, small.objective) == (4, 256, "mae")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4, "objective": "mlm", "auto_map": {}}))
    config = training.build_config(script.parse_args(["--model_config", str(path), "--num_hidden_layers", "3"]))
    assert (config.hidden_size, config.num_hidden_layers, config.objective) == (64, 3, "mlm")
    assert config.intermediate_size == 3072  # fields not in the JSON: BarcodeMAEConfig defaults, not the preset


@pytest.mark.parametrize(
    "flags, error, match",
    [
        (["--splits", "pretrain", "trainn"], ValueError, r"bioscan_fixture\.csv\.gz: unknown split 'trainn'.*pretrain"),
        (["--sequence_column", "barcode"], ValueError, r"bioscan_fixture\.csv\.gz: no column 'barcode'.*dna_barcode"),
        (["--data_file", "missing.csv"], FileNotFoundError, "missing.csv"),
        (["--data_file", "{fasta}"], ValueError, r"reads\.fasta: no column 'split'.*--splits all"),
    ],
)
def test_bad_input_errors(tmp_path, flags, error, match):
    fasta = tmp_path / "reads.fasta"
    fasta.write_text(">a\nACGTACGTACGT\n>b\nACGTACGTAAAA\n")
    with pytest.raises(error, match=match):
        run(tmp_path, "--max_steps", "1", *[flag.format(fasta=fasta) for flag in flags])


def test_bad_characters_error_or_skip(tmp_path, fixture_metadata, capsys, caplog):
    frame = fixture_metadata[fixture_metadata.split == "val"][["processid", "dna_barcode", "split"]].copy()
    frame.iloc[4, 1] = frame.iloc[4, 1][:30] + "7" + frame.iloc[4, 1][30:]
    path = tmp_path / "dirty.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=rf"dirty\.csv: row 5 \(processid '{frame.iloc[4, 0]}'\), column 'dna_barcode': "
                                         "the character '7'"):  # fmt: skip
        run(tmp_path, "--data_file", str(path), "--splits", "val", "--max_steps", "1")
    empty = tmp_path / "empty.csv"
    empty.write_text("dna_barcode,split\n")
    with pytest.raises(ValueError, match=r"empty\.csv.*empty"):
        run(tmp_path, "--data_file", str(empty), "--splits", "all", "--max_steps", "1")
    metrics = run(tmp_path, "--data_file", str(path), "--splits", "val", "--max_steps", "1", "--on_bad_sequence", "skip")
    assert metrics["step"] == 1
    fasta = tmp_path / "reads.fasta"  # a FASTA file (no split column) trains with --splits all
    fasta.write_text("".join(f">r{index}\n{sequence}\n" for index, sequence in enumerate(frame.dna_barcode[5:17])))
    assert run(tmp_path, "--data_file", str(fasta), "--splits", "all", "--max_steps", "1", output="fasta")["step"] == 1
    assert "skipped 1 rows" in caplog.text


def test_probe_queries_come_from_the_validation_splits_unless_test_is_asked(fixture_path, fixture_metadata):
    """Recipes are chosen on val / val_unseen; the test splits only on request (they are reported once)."""
    from barcodemae.feature_probes import FeatureProbe

    for queries, seen, unseen in (("val", "val", "val_unseen"), ("test", "test", "test_unseen")):
        probe = FeatureProbe(str(fixture_path), 100, 30, queries=queries)
        first, second = probe.bounds
        of = {split: set(fixture_metadata.dna_barcode[fixture_metadata.split == split].str[:660]) for split in (seen, unseen)}
        assert first == 100 and set(probe.sequences[first:second]) <= of[seen]
        assert set(probe.sequences[second:]) <= of[unseen] and len(probe.sequences) - second == 30


def test_probes_and_beyond_paper_objectives(tmp_path, fixture_path):
    """--probe_file logs feature probes (untrained, along training, at the end); the objective flags reach the
    saved config; the contrastive term gets two reading-frame views; OneCycle ends near zero learning rate."""
    flags = ["--max_steps", "4", "--probe_file", str(fixture_path), "--probe_steps", "2", "--probe_keys", "200",
             "--probe_queries", "50", "--masked_loss_weight", "0.5", "--hamming_soft_targets",
             "--contrastive_weight", "0.5", "--lr_scheduler", "onecycle", "--checkpointing_steps", "0"]
    run(tmp_path, *flags)
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    probes = [row for row in rows if "probe_genus_1nn_unseen" in row]
    assert [row["step"] for row in probes] == [0, 2, 4]
    # The last probe measured the exported encoder, at the last layer and at layer 0.
    from barcodemae.feature_probes import FeatureProbe
    from modeling_barcodemae import BarcodeMAEModel
    from tokenization_barcodemae import BarcodeMAETokenizer

    exported = BarcodeMAEModel.from_pretrained(tmp_path / "out", attn_implementation="eager")  # as in training
    expected = FeatureProbe(str(fixture_path), 200, 50)(exported, BarcodeMAETokenizer.from_pretrained(tmp_path / "out"))
    assert {name: probes[-1][name] for name in expected} == pytest.approx(expected, abs=0.011)  # rounded to 0.01
    logs = [row for row in rows if "loss" in row]
    assert all(row["contrastive_loss"] > 0 for row in logs)
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 5e-4, total_steps=4)
    for _ in range(2):
        optimizer.step()
        schedule.step()
    assert logs[0]["step"] == 2 and logs[0]["lr"] == pytest.approx(schedule.get_last_lr()[0])
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (saved["masked_loss_weight"], saved["hamming_soft_targets"], saved["contrastive_weight"]) == (0.5, True, 0.5)


def test_two_views_start_at_different_offsets(fixture_path):
    data = [{"sequence": "ACGTAC" * 20}, {"sequence": "ACGTACG"}]
    views = training.OffsetBarcodes(data, k=6, seed=0, views=2)
    first, second = views[0]
    assert first != second and (first.endswith(second) or second.endswith(first))
    assert views[1] == ("ACGTACG", "CGTACG") or views[1] == ("CGTACG", "ACGTACG")  # two offsets keep a full 6-mer
    assert views[0] == training.OffsetBarcodes(data, k=6, seed=0, views=2)[0]  # seeded: the same on resume


def test_recipe_sets_objective_and_optimiser_and_flags_win():
    args = script.parse_args(["--recipe", "reference_optimiser"])
    assert (args.learning_rate, args.lr_scheduler, args.weight_decay, args.adam_beta2) == (1e-4, "onecycle", 1e-5, 0.999)
    config = training.build_config(script.parse_args(["--recipe", "visible_profile", "--masked_loss_weight", "0.7"]))
    assert (config.masked_loss_weight, config.profile_loss_weight) == (0.7, 1.0)
    paper = training.build_config(script.parse_args(["--recipe", "paper"]))
    assert (paper.masked_loss_weight, paper.profile_loss_weight, paper.contrastive_weight) == (1.0, 0.0, 0.0)
    assert paper.pooling_layer == -1 and training.build_config(script.parse_args([])).pooling_layer == 0  # the default


def test_continue_pretraining_from_existing_weights(tmp_path):
    """--model_name_or_path starts from saved weights: a train.py output, or an encoder-only folder (fresh decoder)."""
    run(tmp_path, "--max_steps", "1", "--checkpointing_steps", "0")
    first = load_file(tmp_path / "out" / "model.safetensors")
    argv = ["--output_dir", str(tmp_path / "more"), "--mixed_precision", "no", "--max_steps", "1",
            "--learning_rate", "0", "--checkpointing_steps", "0", "--model_name_or_path", str(tmp_path / "out")]
    script.main(argv)
    continued = load_file(tmp_path / "more" / "model.safetensors")
    assert continued.keys() == first.keys() and all(torch.equal(first[k], continued[k]) for k in first)  # lr 0
    from modeling_barcodemae import BarcodeMAEModel

    BarcodeMAEModel.from_pretrained(tmp_path / "out").save_pretrained(tmp_path / "encoder")  # encoder only
    AcceleratorState._reset_state(True)
    script.main(argv[:-1] + [str(tmp_path / "encoder")])
    from_encoder = load_file(tmp_path / "more" / "model.safetensors")
    assert from_encoder.keys() == first.keys()
    encoder_keys = [key for key in first if key.startswith("barcodemae.")]
    assert encoder_keys and all(torch.equal(first[key], from_encoder[key]) for key in encoder_keys)  # lr 0
    assert not all(torch.equal(first[key], from_encoder[key]) for key in first if key.startswith("decoder"))  # fresh
    with pytest.raises(SystemExit):
        script.parse_args(["--model_name_or_path", str(tmp_path / "out"), "--hidden_size", "64"])


@pytest.mark.slow
@pytest.mark.parametrize("content, message", [(None, "no such file"), ("", "the file is empty"),
                                              ("dna_barcode,split\nACGTAC7GTACGT,pretrain\n", "the character '7'")])
def test_command_prints_one_error_line(tmp_path, content, message):
    """`python train.py` with bad input: one `error:` line naming the file, exit status 2, no traceback."""
    path = tmp_path / "barcodes.csv"
    if content is not None:
        path.write_text(content)
    result = subprocess.run([sys.executable, str(TRAIN_SCRIPT), "--data_file", str(path), "--splits", "all",
                             "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip() and "%|" not in line]
    assert result.returncode == 2 and lines[-1].startswith("error: ") and "barcodes.csv" in lines[-1]
    assert message in lines[-1] and "Traceback" not in result.stderr
    assert "on_bad_sequence='skip'" not in lines[-1]  # train.py's flags, not the library's parameters
    if "character" in message:
        assert lines[-1].endswith("; fix the file or skip them with --on_bad_sequence skip")


def test_register_frame_off_exports_a_tokenizer_that_reads_barcodes_from_their_first_base(tmp_path):
    run(tmp_path, "--max_steps", "1", "--checkpointing_steps", "0", "--register_frame", "off", "--report_to", "none")
    saved = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert saved["register_frame"] is False
    assert "reference frame" not in (tmp_path / "out" / "README.md").read_text()


# sha256 of (model.safetensors, metrics.jsonl without its seq_per_s timings) of `seeded_run`, recorded with train.py
# before its library moved to barcodemae/training.py; valid for the software and CPU kernels it was recorded with.
RECORDED = {("2.13.0+cpu", "5.24.0", "AVX512"): (
    "2abe9dabedfc1c65583f3cc5b8f5bcfba57ea0bffcd8990ca20efb4be8420cb7",
    "86cf8e368825b6a96a185c9952064090850324ad4a1b38b0ab0f0ed1a8f6e138",
)}


def seeded_run(folder: Path) -> tuple[str, str]:
    """`python train.py`, tiny, seeded, fp32 on one CPU thread (6 steps: accumulation, validation every 2 steps, a
    checkpoint at 3): the sha256 of its weights and of its metrics (timings dropped)."""
    command = [sys.executable, str(TRAIN_SCRIPT), "--output_dir", str(folder), "--mixed_precision", "no",
               "--report_to", "none", "--splits", "val", *TINY, "--seed", "0", "--max_steps", "6",
               "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2", "--logging_steps", "2",
               "--eval_steps", "2", "--checkpointing_steps", "3"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    metrics = "".join(json.dumps({k: v for k, v in row.items() if k != "seq_per_s"}) + "\n" for row in rows)
    weights = (folder / "model.safetensors").read_bytes()
    return hashlib.sha256(weights).hexdigest(), hashlib.sha256(metrics.encode()).hexdigest()


@pytest.mark.slow
def test_seeded_runs_give_identical_bytes_and_the_recorded_ones(tmp_path):
    """Two seeded runs write the same weight bytes and metrics, and the ones train.py wrote before the refactor."""
    first, second = seeded_run(tmp_path / "first"), seeded_run(tmp_path / "second")
    assert first == second
    import transformers

    key = (torch.__version__, transformers.__version__, torch.backends.cpu.get_cpu_capability())
    if key not in RECORDED:
        pytest.skip(f"recorded bytes are for {list(RECORDED)}, not {key}")
    assert first == RECORDED[key]


def test_recipe_config_is_what_train_py_builds_from_a_recipe():
    for recipe in ("paper", "visible_layer0", "identity"):
        expected = training.build_config(script.parse_args(["--model_size", "tiny", "--recipe", recipe]))
        assert training.recipe_config("tiny", recipe).to_dict() == expected.to_dict()
    assert training.recipe_config().to_dict() == training.build_config(script.parse_args([])).to_dict()


@pytest.mark.slow
def test_importing_the_library_leaves_omp_wait_policy_alone(tmp_path):
    code = "import os, barcodemae.training; print(os.environ.get('OMP_WAIT_POLICY'))"
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", code], cwd=TRAIN_SCRIPT.parent, env=environment,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and result.stdout.split()[-1] == "None", result.stderr


def test_scale_lr_eval_steps_and_max_train_minutes(tmp_path):
    """--scale_lr multiplies the learning rate by global batch / 256; --eval_steps validates on its own schedule;
    --max_train_minutes 0 stops at the first log line, then validates and exports as at the end."""
    flags = ["--splits", "val", "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2",
             "--checkpointing_steps", "0", "--report_to", "none"]  # fmt: skip
    run(tmp_path, *flags, "--max_steps", "4", "--eval_steps", "3", "--scale_lr", "--learning_rate", "0.0128",
        "--lr_scheduler", "onecycle", output="scaled")  # fmt: skip
    saved = json.loads((tmp_path / "scaled" / "training_args.json").read_text())
    assert saved["learning_rate"] == pytest.approx(0.0128 * 16 / 256)  # 8 x 1 process x 2 accumulation
    assert saved["output_dir"] == "scaled" and saved["data_file"] == "bioscan_fixture.csv.gz"  # no local paths
    assert str(tmp_path) not in json.dumps(saved)
    rows = [json.loads(line) for line in (tmp_path / "scaled" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "val_loss" in row] == [3, 4]  # every 3 steps, and at the end
    stopped = run(tmp_path, *flags, "--max_steps", "8", "--max_train_minutes", "0", output="stopped")
    assert stopped["step"] == 2  # the first log line (--logging_steps 2)
    assert json.loads((tmp_path / "stopped" / "training_args.json").read_text())["optimizer_steps"] == 2
    assert (tmp_path / "stopped" / "model.safetensors").is_file()


def test_eval_steps_0_and_probe_steps_0_mean_only_at_the_start_and_the_end(tmp_path, fixture_path):
    """0 is a schedule of its own (validation at the end only; probes before the first step and after the last), not
    "unset": it does not fall back to --checkpointing_steps."""
    run(tmp_path, "--splits", "val", "--per_device_train_batch_size", "8", "--max_steps", "4", "--checkpointing_steps",
        "2", "--eval_steps", "0", "--probe_file", str(fixture_path), "--probe_steps", "0", "--probe_keys", "200",
        "--probe_queries", "50", "--report_to", "none")  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "val_loss" in row] == [4]
    assert [row["step"] for row in rows if "probe_genus_1nn_unseen" in row] == [0, 4]
    assert (tmp_path / "out" / "checkpoints" / "step_2").is_dir()  # checkpoints keep their own schedule
