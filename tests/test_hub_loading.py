"""The user's path: a saved folder loaded in a fresh offline interpreter through trust_remote_code, and Trainer."""

import json

import numpy as np
import pytest
import torch
from conftest import run_clean_python, tiny_config_kwargs
from safetensors.torch import load_file
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from configuration_barcodemae import BarcodeMAEConfig
from modeling_barcodemae import BarcodeMAEForPreTraining, BarcodeMAEForSequenceClassification, BarcodeMAEModel
from tokenization_barcodemae import BarcodeMAETokenizer

AUTO_CLASSES = ["AutoModel", "AutoModelForPreTraining", "AutoModelForSequenceClassification"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, barcodes):
    """A tiny pretraining model + tokenizer saved as a Hub folder, and its outputs computed in this process."""
    folder = tmp_path_factory.mktemp("barcodemae-tiny")
    torch.manual_seed(0)
    model = BarcodeMAEForPreTraining(BarcodeMAEConfig(**tiny_config_kwargs())).eval()
    tokenizer = BarcodeMAETokenizer()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    encoded = tokenizer(barcodes[:8], padding=True, truncation=True, return_tensors="pt")
    noise = torch.rand(encoded["input_ids"].shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = {
            "AutoModel": model.barcodemae(**encoded).pooler_output,
            "AutoModelForPreTraining": model(**encoded, noise=noise).logits,
        }
    return folder, barcodes[:8], noise, expected


def test_saved_folder_is_complete(saved_model):
    folder = saved_model[0]
    files = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "configuration_barcodemae.py",
            "modeling_barcodemae.py", "tokenization_barcodemae.py", "alphabet_barcodemae.py"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "barcodemae"
    assert set(config["auto_map"]) == {"AutoConfig", *AUTO_CLASSES}
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert "tokenization_barcodemae.BarcodeMAETokenizer" in tokenizer_config["auto_map"]["AutoTokenizer"]


@pytest.mark.slow
@pytest.mark.parametrize("auto_class", AUTO_CLASSES)
def test_load_in_fresh_interpreter_with_trust_remote_code(saved_model, auto_class, tmp_path):
    folder, sequences, noise, expected = saved_model
    torch.save({"noise": noise}, tmp_path / "noise.pt")
    code = f"""
import torch, transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoTokenizer, {auto_class}
folder = {str(folder)!r}
config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
assert type(config).__name__ == "BarcodeMAEConfig", type(config)
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
assert type(tokenizer).__name__ == "BarcodeMAETokenizer" and tokenizer.model_max_length == 110
model = {auto_class}.from_pretrained(folder, trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
batch = tokenizer({sequences!r}, padding=True, truncation=True, return_tensors="pt")
noise = torch.load({str(tmp_path / "noise.pt")!r}, weights_only=True)["noise"]

def run(model):
    with torch.no_grad():
        if "{auto_class}" == "AutoModel":
            return model(**batch).pooler_output
        if "{auto_class}" == "AutoModelForPreTraining":
            return model(**batch, noise=noise).logits
        return model(**batch).logits

# The written-out attention (what train.py uses on CPU) is selectable at load time and gives the same result.
eager = {auto_class}.from_pretrained(folder, trust_remote_code=True, attn_implementation="eager").eval()
assert model.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
eager.load_state_dict(model.state_dict())  # the same new classification head, where there is one
save_file({{"result": run(model).contiguous(), "eager": run(eager).contiguous()}}, "result.safetensors")
"""
    completed = run_clean_python(code, tmp_path)
    # Progress bars name the tensors they load (transformers 5.1: "materializing param=decoder..."): not warnings.
    stderr = "\n".join(line for line in completed.stderr.lower().splitlines() if "it/s" not in line)
    for quiet_about in ("decoder", "unexpected", "not used"):
        assert quiet_about not in stderr, completed.stderr
    # Only the classification head is new, and only for the class that has one (transformers' loading report:
    # one "name | MISSING |" row per newly initialised tensor).
    new_weights = {line.split("|")[0].strip() for line in stderr.splitlines() if "| missing" in line}
    head = {"classifier.weight", "classifier.bias"} if auto_class == "AutoModelForSequenceClassification" else set()
    assert new_weights == head, completed.stderr
    results = load_file(tmp_path / "user" / "result.safetensors")
    result = results["result"]
    torch.testing.assert_close(results["eager"], result, atol=1e-5, rtol=1e-5)
    if auto_class in expected:
        torch.testing.assert_close(result, expected[auto_class], atol=1e-5, rtol=1e-5)
    else:  # a new classification head on the pretrained encoder
        assert result.shape == (len(sequences), 2)


@pytest.mark.slow
def test_feature_extraction_pipeline(saved_model, tmp_path):
    folder, sequences = saved_model[:2]
    code = f"""
import json
from transformers import pipeline
extractor = pipeline("feature-extraction", model={str(folder)!r}, trust_remote_code=True)
features = extractor({sequences[:2]!r})
print(json.dumps([len(f[0]) for f in features]))
"""
    completed = run_clean_python(code, tmp_path)
    lengths = json.loads(completed.stdout.strip().splitlines()[-1])
    assert lengths == [min(len(sequence) // 6, 110) for sequence in sequences[:2]]


def test_encoder_loads_from_pretraining_checkpoint_without_decoder(saved_model):
    folder = saved_model[0]
    encoder, info = BarcodeMAEModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    saved = load_file(folder / "model.safetensors")
    assert any(name.startswith("decoder") for name in saved)  # the decoder is in the file, and left out
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(tensor, saved[f"barcodemae.{name}"], rtol=0, atol=0)


class GenusDataset(torch.utils.data.Dataset):
    def __init__(self, tokenizer, sequences, labels):
        self.encoded = tokenizer(sequences, truncation=True)
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_ids": self.encoded["input_ids"][index], "labels": self.labels[index]}


def test_trainer_fine_tunes_sequence_classification(fixture_metadata, saved_model, tmp_path):
    folder = saved_model[0]
    rows = fixture_metadata[fixture_metadata.split == "train"].head(32)
    genera = sorted(set(rows.genus))
    tokenizer = BarcodeMAETokenizer.from_pretrained(folder)
    model = BarcodeMAEForSequenceClassification.from_pretrained(folder, num_labels=len(genera))
    assert model.accepts_loss_kwargs is False  # Trainer must not rescale the loss under gradient accumulation
    before = model.classifier.weight.detach().clone()
    dataset = GenusDataset(tokenizer, list(rows.dna_barcode), [genera.index(g) for g in rows.genus])
    arguments = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=3,
        learning_rate=1e-3, report_to=[], save_strategy="no", use_cpu=True, seed=0, logging_steps=1,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer))
    result = trainer.train()
    assert result.global_step == 3 and np.isfinite(result.training_loss)
    # From a random head (logits near 0) the first step's loss, the mean over its two accumulated batches, is about
    # log(num_labels); a loss summed or divided over the accumulation steps would be off by a factor of 2.
    assert trainer.state.log_history[0]["loss"] == pytest.approx(np.log(len(genera)), rel=0.1)
    assert not torch.equal(before, model.classifier.weight.detach())
    predictions = trainer.predict(dataset)
    assert predictions.predictions.shape == (32, len(genera))
