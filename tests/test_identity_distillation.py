"""Identity distillation: the KL term, the neighbour batches it trains on, and a tiny train.py run with it."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from accelerate.state import AcceleratorState, GradientState
from conftest import tiny_config_kwargs, train_script

from barcodemae.alignment import alignment_identity
from barcodemae.encoders import kmer_embeddings, load_encoder
from barcodemae.identity_batches import NeighbourBatchSampler, identity_matrix, kmer_neighbour_table, teacher_matrix
from modeling_barcodemae import identity_distillation


@pytest.fixture(scope="module")
def pretraining_barcodes(fixture_metadata) -> list[str]:
    rows = fixture_metadata[fixture_metadata.split == "pretrain"]
    return list(dict.fromkeys(rows.dna_barcode))[:300]


def test_distillation_is_zero_when_cosine_ranks_as_identity_and_positive_otherwise():
    embeddings = torch.randn(12, 16, generator=torch.Generator().manual_seed(0))
    cosine = F.normalize(embeddings, dim=-1) @ F.normalize(embeddings, dim=-1).T
    matching = cosine * 0.01 / 0.05  # softmax(identity / 0.01) == softmax(cosine / 0.05) row by row
    assert identity_distillation(embeddings, matching, 0.01, 0.05).item() == pytest.approx(0.0, abs=1e-5)
    shuffled = matching[torch.randperm(12, generator=torch.Generator().manual_seed(1))][:, torch.arange(12)]
    assert identity_distillation(embeddings, shuffled, 0.01, 0.05).item() > 0.1


def test_distillation_gradient_moves_cosine_towards_identity():
    """One gradient step on the embeddings lowers the loss and brings the closest-by-identity pair closer."""
    embeddings = torch.randn(6, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
    identity = torch.full((6, 6), 0.80).fill_diagonal_(1.0)
    identity[0, 1] = identity[1, 0] = 0.99
    loss = identity_distillation(embeddings, identity, 0.01, 0.05)
    loss.backward()
    with torch.no_grad():
        moved = embeddings - 0.5 * embeddings.grad
        before = F.cosine_similarity(embeddings[0], embeddings[1], dim=0)
        after = F.cosine_similarity(moved[0], moved[1], dim=0)
        assert identity_distillation(moved, identity, 0.01, 0.05) < loss
    assert after > before


def test_neighbour_table_lists_the_kmer_nearest_others(pretraining_barcodes):
    table = kmer_neighbour_table(pretraining_barcodes, neighbours=8)
    assert table.shape == (len(pretraining_barcodes), 8)
    profiles = kmer_embeddings(pretraining_barcodes, 6)
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    for row in (0, 57, 199):
        assert row not in table[row]
        similarities = profiles[table[row]] @ profiles[row]
        others = np.delete(profiles @ profiles[row], row)
        assert np.all(np.diff(similarities) <= 1e-6)  # nearest first
        assert similarities[-1] >= np.sort(others)[-8] - 1e-6  # and they are the 8 nearest


def test_neighbour_batches_hold_anchors_with_their_neighbours_and_repeat_on_resume(pretraining_barcodes):
    table = kmer_neighbour_table(pretraining_barcodes, neighbours=16)
    sampler = NeighbourBatchSampler(table, batch_size=32, per_anchor=7, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == -(-len(table) // 4)
    for batch in batches:
        assert len(batch) == 32 and len(set(batch)) == 32
        assert set(batch[1:8]) <= set(table[batch[0]])  # the first anchor, then 7 of its neighbours
    assert set().union(*batches) == set(range(len(table)))  # every barcode is an anchor in the epoch
    assert len({batch[0] for batch in batches}) == len(batches)
    assert list(NeighbourBatchSampler(table, 32, 7, seed=3)) == batches
    sampler.epoch = 1
    assert list(sampler) != batches
    with pytest.raises(ValueError, match="cannot hold"):
        NeighbourBatchSampler(table, batch_size=4, per_anchor=7, seed=0)


def test_identity_matrix_is_symmetric_alignment_identity(pretraining_barcodes):
    sequences = pretraining_barcodes[:5]
    matrix = identity_matrix(sequences)
    assert torch.equal(matrix, matrix.T) and torch.all(matrix.diagonal() == 1)
    assert matrix[1, 3].item() == pytest.approx(alignment_identity(sequences[1], sequences[3]))


def test_teacher_matrix_is_the_cosine_of_the_non_learned_pair_or_alignment_identity(pretraining_barcodes):
    sequences = pretraining_barcodes[:6]
    matrix = teacher_matrix("kmer:6+aa:3")(sequences)
    assert matrix.shape == (6, 6) and torch.allclose(matrix, matrix.T) and torch.allclose(matrix.diagonal(), torch.ones(6))
    parts = [F.normalize(torch.from_numpy(load_encoder(spec).embed(sequences[:2])), dim=-1) for spec in ("kmer:6", "aa:3")]
    assert matrix[0, 1].item() == pytest.approx(np.mean([float(part[0] @ part[1]) for part in parts]), abs=1e-5)
    assert teacher_matrix("identity") is identity_matrix
    with pytest.raises(ValueError, match="distillation_teacher"):
        teacher_matrix("checkpoints/some-model")


def train_tiny(tmp_path, recipe: str, steps: int) -> tuple[list[dict], dict]:
    """train.py on the fixture with a tiny model and `--recipe`: the metrics.jsonl rows and the saved config."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    tiny = [f"--{key}={value}" for key, value in tiny_config_kwargs(decoder_num_hidden_layers=1).items()]
    train_script().main(["--output_dir", str(tmp_path / "out"), "--mixed_precision", "no", "--logging_steps", "2", *tiny,
                         "--recipe", recipe, "--max_steps", str(steps), "--per_device_train_batch_size", "16",
                         "--identity_neighbours", "3", "--checkpointing_steps", "0", "--report_to", "none"])  # fmt: skip
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    logged = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    return logged, json.loads((tmp_path / "out" / "config.json").read_text())


def test_train_py_distils_the_teacher_recipe_into_the_last_layer(tmp_path):
    """--recipe visible_teacher: batches carry the non-learned pair's cosines, the distillation loss is logged, and the
    checkpoint records its teacher."""
    logged, config = train_tiny(tmp_path, "visible_teacher", 2)
    assert [row["identity_loss"] > 0 for row in logged if "identity_loss" in row] == [True]
    assert (config["distillation_teacher"], config["identity_temperature"], config["pooling_layer"]) == ("kmer:6+aa:3", 0.05, -1)


def test_train_py_runs_identity_distillation_and_registers_frames_by_default(tmp_path):
    logged, config = train_tiny(tmp_path, "identity", 4)
    losses = [row["identity_loss"] for row in logged if "identity_loss" in row]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert config["identity_distillation_weight"] == 1.0
    assert json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())["register_frame"] is True
