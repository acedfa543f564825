"""The one model-card writer (README.md of a model folder): train.py's export and the released checkpoint use it."""

from __future__ import annotations

import math

from configuration_barcodemae import BarcodeMAEConfig

HUB_OWNER = "barcodemae"  # the Hub namespace of the released model and its demo Space (one place to change it)
MODEL_ID = f"{HUB_OWNER}/barcodemae-4x256-bold"
SPACE_ID = f"{HUB_OWNER}/barcodemae-demo"
SPACE_URL = f"https://huggingface.co/spaces/{SPACE_ID}"

DOMAIN = {
    False: "- Trained on insect COI-5P barcodes (~660 bp, non-overlapping 6-mers from the first base): other markers, "
           "taxa or\n  read types are out of its domain, and barcodes that start elsewhere in the gene shift every k-mer.",
    True: "- Trained on insect COI-5P barcodes (~660 bp, non-overlapping 6-mers registered to the reference frame): "
          "other\n  markers, taxa or read types are out of its domain; barcodes the tokenizer cannot place on its COI-5P "
          "reference\n  are tokenized from their first base.",
}  # fmt: skip
LIMITATIONS = """- Frozen features of small models pretrained on little data can be worse than an untrained encoder and than 6-mer
  count vectors for nearest-neighbour identification: see "How it compares" (or run `barcodemae evaluate` on your
  data) before relying on them. For identification and BIN-like clustering, sequence identity (BLAST, VSEARCH)
  remains the reference.
- Embeddings are not calibrated similarities: use `barcodemae identify`'s abstention rule, not a fixed cut-off."""
# Measured on the 108k-barcode BOLD file (the toolkit's RESULTS.md: "Reading frames", and README: identification).
RELEASED_PROBES = (f"The released checkpoint [`{MODEL_ID}`](https://huggingface.co/{MODEL_ID}) (4+4 layers x 256, 800 "
                   "steps of 64 barcodes on 16.7k insect barcodes) against 6-mer counts (`kmer:6`, 4,096 dims) and an "
                   "untrained encoder of its size (seeds 0 / 1), frozen features on the BIOSCAN-5M protocol of a "
                   "108k-barcode BOLD export, %: genus 1-NN of unseen species 70.0 vs 72.3 vs 55.9 / 61.3; harmonic "
                   "mean of species linear probe, genus 1-NN and BIN AMI 77.2 vs 78.8 vs 71.5 / 74.3.")  # fmt: skip
IDENTIFY_COMPARISON = ("As the retriever of `barcodemae identify` (its 50 nearest references re-ranked by alignment "
                       "identity), the released checkpoint called genus / family / order of unseen species right "
                       "77.4 / 92.8 / 99.4% of the time, against 73.9 / 88.5 / 98.9 with `kmer:6` and 76.1 / 91.2 / "
                       "99.9 with BLAST (same 108k-barcode BOLD reference and queries).")  # fmt: skip
DATA_FILES = {  # data files people may not know, by name
    "bioscan_fixture.csv.gz": "the toolkit's bundled fixture: 3,627 real BOLD insect COI-5P barcodes in the "
                              "BIOSCAN-5M layout, a test set far too small to pretrain a useful model on",
    "bold_insecta_coi.csv.gz": "a 108k-record BOLD export of insect COI-5P barcodes in the BIOSCAN-5M layout",
}  # fmt: skip
SETTING_NAMES = {  # train.py's resolved settings, as a reader says them
    "started_from": "started from",
    "optimizer_steps": "optimizer steps", "global_batch_size": "barcodes per optimizer step",
    "learning_rate": "peak learning rate", "lr_scheduler": "learning-rate schedule",
    "warmup_ratio": "warm-up (fraction of the steps)", "weight_decay": "weight decay (AdamW)", "adam_betas": "AdamW betas",
    "max_grad_norm": "gradient clipping (max norm)", "mixed_precision": "mixed precision", "seed": "seed",
    "processes": "processes", "validation_masked_6mer_accuracy": "validation masked 6-mer accuracy",
}  # fmt: skip
SCHEDULES = {"cosine": "linear warm-up, then cosine decay", "onecycle": "one-cycle (PyTorch's OneCycleLR defaults)"}
EXAMPLE = {"Aedes aegypti": "CULSA070-19", "Lasioglossum calceatum": "AMTPA2534-15"}  # fixture barcodes: a reference
EXAMPLE_QUERY = "AGIRI262-17"  # another Aedes aegypti barcode of the fixture


def _objective(config: BarcodeMAEConfig) -> str:
    if config.objective == "mlm":
        return "BarcodeBERT-style masked language modelling (the encoder sees `[MASK]`)"
    terms = ["masked autoencoder: the encoder sees only the visible k-mers, a decoder reconstructs the masked ones"]
    if config.masked_loss_weight < 1:
        weight = config.masked_loss_weight
        terms.append(f"visible k-mers reconstructed too (loss weight {weight:g} on the masked k-mers, {1 - weight:g} on the "
                     "visible ones)")  # fmt: skip
    if config.hamming_soft_targets:
        terms.append("Hamming soft targets")
    if config.contrastive_weight > 0:
        terms.append(f"contrastive term between reading frames (weight {config.contrastive_weight:g})")
    if config.profile_loss_weight > 0:
        terms.append(f"masked k-mer profile term (weight {config.profile_loss_weight:g})")
    if config.identity_distillation_weight > 0:
        terms.append(f"alignment identity distilled into embedding cosine (weight {config.identity_distillation_weight:g})")
    return "; ".join(terms)


PROBE_METRICS = (  # (name, metric type, split, value from a `barcodemae evaluate` result) for the model-index
    ("Species linear-probe accuracy", "accuracy", "test", lambda result: result["species_linear_probe"]["accuracy"]),
    ("Genus 1-NN accuracy, unseen species", "accuracy", "test_unseen", lambda result: result["genus_1nn_unseen"]["accuracy"]),
    ("BIN reconstruction AMI", "ami", "test + test_unseen", lambda result: result["bin_reconstruction"]["ami"]),
    ("Harmonic mean", "harmonic_mean", "test + test_unseen", lambda result: result["harmonic_mean"]),
)  # fmt: skip


def _eval_results(validation: dict | None, probe_result: dict | None, dataset_name: str, dataset_id: str | None):
    """The model-index: the masked-token validation metrics, and the frozen-feature probes when given (%)."""
    from huggingface_hub import EvalResult

    dataset = dict(dataset_type=dataset_id or dataset_name, dataset_name=dataset_name)
    results = []
    if validation:
        masked = dict(task_type="fill-mask", task_name="Masked k-mer reconstruction", dataset_split="held-out validation",
                      **dataset)  # fmt: skip
        results += [EvalResult(metric_type="accuracy", metric_name="Masked-token accuracy",
                               metric_value=round(validation["val_masked_accuracy"], 4), **masked),
                    EvalResult(metric_type="loss", metric_name="Masked-token cross-entropy",
                               metric_value=round(validation["val_loss"], 4), **masked)]  # fmt: skip
    if probe_result:
        results += [EvalResult(task_type="feature-extraction", task_name="Frozen-feature probes (BIOSCAN-5M protocol)",
                               metric_type=kind, metric_name=name, metric_value=round(100 * value(probe_result), 1),
                               dataset_split=split, **dataset)
                    for name, kind, split, value in PROBE_METRICS]  # fmt: skip
    return results or None


def _metadata(name: str, eval_results, dataset_id: str | None) -> str:
    """The YAML header."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        library_name="transformers", license="mit", pipeline_tag="feature-extraction", model_name=name,
        tags=["biology", "dna", "dna-barcoding", "coi", "masked-autoencoder", "barcodemae", "custom_code"],
        datasets=[dataset_id] if dataset_id else None, eval_results=eval_results,
    )  # fmt: skip
    return f"---\n{data.to_yaml()}\n---"


def _load_name(location: str) -> str:
    """What `from_pretrained` gets in the card: a Hub id as it is, a folder name as a relative path."""
    return location if "/" in location else f"./{location}"


def _wrapped(sequence: str, indent: str, width: int = 100) -> str:
    return "(\n" + "".join(f'{indent}    "{sequence[start:start + width]}"\n' for start in range(0, len(sequence), width)) + f"{indent})"


def quick_start(location: str) -> str:
    """The card's first code: load the model, embed two labelled barcodes and a query, name the query's nearest."""
    import pandas as pd

    from barcodemae.data import FIXTURE, clean_barcode

    barcodes = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False).set_index("processid")["dna_barcode"]
    reference = "".join(f'    "{label}": {_wrapped(clean_barcode(barcodes[row]), "    ")},\n' for label, row in EXAMPLE.items())
    where = "" if "/" in location else "  # the folder train.py wrote (a Hub id once uploaded)"
    return f"""```python
import torch
from transformers import AutoModel, AutoTokenizer

model_id = "{_load_name(location)}"{where}
tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=True)
model = AutoModel.from_pretrained(model_id, trust_remote_code=True).eval()

reference = {{  # two labelled COI-5P barcodes (BOLD)
{reference}}}
query = {_wrapped(clean_barcode(barcodes[EXAMPLE_QUERY]), "")}
batch = tokenizer([query, *reference.values()], padding=True, truncation=True, return_tensors="pt")
with torch.no_grad():
    vectors = torch.nn.functional.normalize(model(**batch).pooler_output, dim=-1)
similarity = vectors[1:] @ vectors[0]
print(f"nearest reference: {{list(reference)[int(similarity.argmax())]}} (cosine {{similarity.max():.3f}})")
```"""


def _setting_value(name: str, value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if name == "recipe" and " " not in str(value):  # a bare recipe name: say what it is
        return f"`{value}` (train.py --recipe {value}): the objective and pooling under Model"
    return SCHEDULES.get(value, str(value)) if name == "lr_scheduler" else str(value)


def _settings_table(training: dict) -> str:
    rows = "".join(f"| {SETTING_NAMES.get(name, name.replace('_', ' '))} | {_setting_value(name, value)} |\n"
                   for name, value in training.items())  # fmt: skip
    return f"| setting | value |\n|---|---|\n{rows}".rstrip()


def _data_text(data: str, dataset_name: str) -> str:
    known = DATA_FILES.get(dataset_name)
    return f"{data}\n\n`{dataset_name}`: {known}." if known and known not in data else data


def _validation_table(validation: dict, k: int) -> str:
    return ("## Validation (fixed masking noise)\n\n| metric | value |\n|---|---|\n"
            f"| masked-token accuracy | {validation['val_masked_accuracy']:.4f} (chance: 1/{4**k:,} = {1 / 4**k:.5f}, "
            f"one of the {4**k:,} {k}-mers) |\n"
            f"| masked-token loss | {validation['val_loss']:.4f} (uniform guess: ln {4**k:,} = {math.log(4**k):.2f}) |\n"
            f"| masked tokens | {validation['val_masked_tokens']} |\n| optimizer steps | {validation['step']} |")  # fmt: skip


def _comparison(probe_table: str | None, location: str) -> str:
    measure = (f"Measure this model the same way: `barcodemae evaluate --models kmer:6 {_load_name(location)}` "
               "(`--data_file` a BIOSCAN-5M-layout file; the default is the toolkit's small fixture).")  # fmt: skip
    if probe_table:
        return f"## How it compares\n\n{probe_table}\n\n{IDENTIFY_COMPARISON}\n\n{measure}"
    return (f"## How it compares\n\nNot measured for this model. For reference: {RELEASED_PROBES} {IDENTIFY_COMPARISON}"
            f"\n\n{measure}")


def model_card(
    config: BarcodeMAEConfig,
    name: str,
    location: str,
    data: str,
    training: dict,
    dataset_name: str,
    validation: dict | None = None,
    probe_table: str | None = None,
    dataset_id: str | None = None,
    register_frame: bool = False,
    probe_result: dict | None = None,
) -> str:
    """Markdown with YAML metadata: how to load and use the model first, then the demo, what it is, how it compares
    (`probe_table` and the released checkpoint's numbers), its data, the resolved training settings, its validation
    (`val_masked_accuracy`, `val_loss`, `val_masked_tokens`, `step`, with the chance level), limitations and licence.
    `location` is how users load it: a Hub id or a folder name, never a local path. `register_frame`: the tokenizer
    registers barcodes to the COI-5P reference frame. `probe_result`: this model's `barcodemae evaluate` result, for
    the model-index."""
    layers = f"{config.num_hidden_layers} layers x {config.hidden_size}"
    if config.objective == "mae":
        layers += f", decoder {config.decoder_num_hidden_layers} x {config.decoder_hidden_size} (dropped for inference)"
    pooling = "the last layer" if config.pooling_layer == -1 else f"hidden state {config.pooling_layer}"
    sections = [
        _metadata(name, _eval_results(validation, probe_result, dataset_name, dataset_id), dataset_id),
        f"# {name}",
        "A BarcodeMAE encoder for insect COI-5P DNA barcodes: each barcode becomes a vector whose nearest neighbours are "
        "its relatives. Load it, embed barcodes, find a query's nearest labelled reference:",
        quick_start(location),
        f"On the command line, with the BarcodeMAE toolkit: `barcodemae embed barcodes.fasta --model "
        f"{_load_name(location)} --output embeddings.parquet`, and `barcodemae identify queries.fasta --reference "
        f"labelled.csv --model {_load_name(location)} --output calls.tsv` for species-to-order calls with abstentions.",
        f"## Try it\n\nThe demo Space [{SPACE_ID}]({SPACE_URL}): paste barcodes, get species, genus, family and order "
        "calls (with abstentions), their embeddings and a map. It runs locally from a clone of the toolkit: "
        f"`pip install -e \".[demo]\"` then `python space/app.py --model {_load_name(location)}`.",
        f"## Model\n\n[BarcodeMAE](https://arxiv.org/abs/2502.18405), {layers}; {config.k_mer}-mers, "
        f"{config.max_sequence_length} nt per barcode, {config.mask_ratio:.0%} of the k-mers masked in pretraining. "
        f"Objective: {_objective(config)}. `pooler_output` is the mean over the k-mers of {pooling}."
        + (" The tokenizer registers each barcode to the reading frame of a bundled COI-5P reference before cutting "
           "its k-mers (`register_frame` in tokenizer_config.json): the same stretch of the gene gives the same "
           "tokens whatever base a barcode starts at." if register_frame else ""),
        _comparison(probe_table, location),
        f"## Data\n\n{_data_text(data, dataset_name)}",
        f"## Training\n\n{_settings_table(training)}",
    ]
    if validation:
        sections.append(_validation_table(validation, config.k_mer))
    sections += [
        f"## Limitations\n\n{DOMAIN[register_frame]}\n{LIMITATIONS}",
        "## Licence\n\nMIT (code and weights). The training records come from BOLD under their own licences "
        "(mostly CC BY-NC-SA).",
    ]
    return "\n\n".join(sections) + "\n"
