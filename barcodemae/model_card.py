"""The one model-card writer (README.md of a model folder): train.py's export and the released checkpoint use it."""

from __future__ import annotations

import json

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
  count vectors for nearest-neighbour identification; check the probe table below (or run `barcodemae evaluate` on
  your data) before relying on them. For identification and BIN-like clustering, sequence identity (BLAST, VSEARCH)
  remains the reference.
- Embeddings are not calibrated similarities: use `barcodemae identify`'s abstention rule, not a fixed cut-off."""


def _objective(config: BarcodeMAEConfig) -> str:
    if config.objective == "mlm":
        return "BarcodeBERT-style masked language modelling (the encoder sees `[MASK]`)"
    terms = ["masked autoencoder: the encoder sees only the visible k-mers, a decoder reconstructs the masked ones"]
    if config.masked_loss_weight < 1:
        terms.append(f"visible k-mers reconstructed too (masked_loss_weight {config.masked_loss_weight:g})")
    if config.hamming_soft_targets:
        terms.append("Hamming soft targets")
    if config.contrastive_weight > 0:
        terms.append(f"contrastive term between reading frames (weight {config.contrastive_weight:g})")
    if config.profile_loss_weight > 0:
        terms.append(f"masked k-mer profile term (weight {config.profile_loss_weight:g})")
    if config.identity_distillation_weight > 0:
        terms.append(f"alignment identity distilled into embedding cosine (weight {config.identity_distillation_weight:g})")
    return "; ".join(terms)


def _metadata(name: str, validation: dict | None, dataset_name: str, dataset_id: str | None) -> str:
    """The YAML header, with a model-index of the validation metrics when there are any."""
    from huggingface_hub import EvalResult, ModelCardData

    common = dict(task_type="fill-mask", task_name="Masked k-mer reconstruction", dataset_type=dataset_id or dataset_name,
                  dataset_name=dataset_name, dataset_split="held-out validation")  # fmt: skip
    results = None
    if validation:
        results = [EvalResult(metric_type="accuracy", metric_name="Masked-token accuracy",
                              metric_value=round(validation["val_masked_accuracy"], 4), **common),
                   EvalResult(metric_type="loss", metric_name="Masked-token cross-entropy",
                              metric_value=round(validation["val_loss"], 4), **common)]  # fmt: skip
    data = ModelCardData(
        library_name="transformers", license="mit", pipeline_tag="feature-extraction", model_name=name,
        tags=["biology", "dna", "dna-barcoding", "coi", "masked-autoencoder", "barcodemae", "custom_code"],
        datasets=[dataset_id] if dataset_id else None, eval_results=results,
    )  # fmt: skip
    return f"---\n{data.to_yaml()}\n---"


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
) -> str:
    """Markdown with YAML metadata: what the model is, its data, the resolved training settings, its validation
    (`val_masked_accuracy`, `val_loss`, `val_masked_tokens`, `step`) and probe numbers when given, how to load it,
    limitations and licence. `location` is how users load it: a Hub id or a folder name, never a local path.
    `register_frame`: the tokenizer registers barcodes to the COI-5P reference frame (said where tokens are described)."""
    layers = f"{config.num_hidden_layers} layers x {config.hidden_size}"
    if config.objective == "mae":
        layers += f", decoder {config.decoder_num_hidden_layers} x {config.decoder_hidden_size} (dropped for inference)"
    pooling = "the last layer" if config.pooling_layer == -1 else f"hidden state {config.pooling_layer}"
    sections = [
        _metadata(name, validation, dataset_name, dataset_id),
        f"# {name}",
        f"A BarcodeMAE encoder ([arXiv 2502.18405](https://arxiv.org/abs/2502.18405)) for DNA barcodes: {layers}; "
        f"{config.k_mer}-mers, {config.max_sequence_length} nt per barcode, {config.mask_ratio:.0%} of the k-mers "
        f"masked in pretraining. Objective: {_objective(config)}. `pooler_output` is the mean over the k-mers of "
        f"{pooling}."
        + (" The tokenizer registers each barcode to the reading frame of a bundled COI-5P reference before cutting "
           "its k-mers (`register_frame` in tokenizer_config.json): the same stretch of the gene gives the same "
           "tokens whatever base a barcode starts at." if register_frame else ""),
        f"## Data\n\n{data}",
        "## Training\n\n```json\n" + json.dumps(training, indent=2, default=str) + "\n```",
    ]
    if validation:
        sections.append("## Validation (fixed masking noise)\n\n| metric | value |\n|---|---|\n"
                        f"| masked-token accuracy | {validation['val_masked_accuracy']:.4f} |\n"
                        f"| masked-token loss | {validation['val_loss']:.4f} |\n"
                        f"| masked tokens | {validation['val_masked_tokens']} |\n| optimizer steps | {validation['step']} |")
    if probe_table:
        sections.append(f"## Frozen-feature probes\n\n{probe_table}")
    sections += [
        f"""## Use

```python
from transformers import AutoModel, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{location}", trust_remote_code=True)
model = AutoModel.from_pretrained("{location}", trust_remote_code=True).eval()
batch = tokenizer(["AACATTATATTTTATTTTTGGAATTTGAGC..."], padding=True, truncation=True, return_tensors="pt")
embedding = model(**batch).pooler_output
```

Or on the command line: `barcodemae embed barcodes.fasta --model {location} --output embeddings.parquet`.""",
        f"## Limitations\n\n{DOMAIN[register_frame]}\n{LIMITATIONS}",
        "## Licence\n\nMIT (code and weights). The training records come from BOLD under their own licences "
        "(mostly CC BY-NC-SA).",
    ]
    return "\n\n".join(sections) + "\n"
