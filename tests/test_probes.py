"""barcodemae.protocol (evaluate_probes.py): the BIOSCAN-5M frozen-feature protocol on the fixture, tiny model and k-mers."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_config_kwargs

import barcodemae.encoders as encoders
from barcodemae import protocol as probes
from barcodemae.cache import EmbeddingCache
from barcodemae.data import load_splits
from barcodemae.encoders import embed_sequences, kmer_embeddings
from barcodemae.neighbours import nearest_neighbour, nearest_neighbours
from configuration_barcodemae import BarcodeMAEConfig
from modeling_barcodemae import BarcodeMAEModel, masked_mean
from tokenization_barcodemae import BarcodeMAETokenizer

# Small UMAP settings: the protocol's code path, a fraction of the time.
FAST = dict(umap_n_neighbors=5, umap_components=5, probe_max_iter=30, batch_size=32)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def protocol_run(one_thread, tiny_model_dir, fixture_path, tmp_path_factory):
    """The whole protocol, once, on k-mers and the tiny model: its output folder (with its cache) and report."""
    output = tmp_path_factory.mktemp("probes")
    return output, probes.evaluate(["kmer:4", str(tiny_model_dir)], fixture_path, output, progress=False, **FAST)


def _numbers(metrics: dict) -> list[float]:
    values = []
    for key, value in metrics.items():
        if key in ("timings",):
            continue
        if isinstance(value, dict):
            values += [v for k, v in value.items() if not k.startswith("n_")]
        else:
            values.append(value)
    return values


def test_1nn_metrics_match_sklearn(protocol_run, fixture_path):
    """The protocol's 1-NN numbers equal scikit-learn's cosine 1-NN classifier on the same embeddings."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier

    _, report = protocol_run
    splits = load_splits(fixture_path, ["train", "test", "test_unseen"])
    train, unseen = splits["train"], splits["test_unseen"]
    keys, queries = (np.flatnonzero(split.labels["genus"] != "") for split in (train, unseen))
    classifier = KNeighborsClassifier(n_neighbors=1, metric="cosine", algorithm="brute")
    classifier.fit(kmer_embeddings(train.sequences, 4)[keys], train.labels["genus"][keys])
    predicted = classifier.predict(kmer_embeddings(unseen.sequences, 4)[queries])
    truth = unseen.labels["genus"][queries]
    metrics = report["results"]["kmer:4"]["genus_1nn_unseen"]
    assert metrics["n_queries"] == len(queries) and metrics["n_classes"] == len(set(truth))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    # k-mers are a strong baseline: far above chance on the fixture; the splits were deduplicated by barcode
    assert report["results"]["kmer:4"]["species_linear_probe"]["accuracy"] > 0.5
    assert report["data"]["splits"]["train"]["unique_barcodes"] < report["data"]["splits"]["train"]["rows"] == 700


def test_deterministic_across_runs(protocol_run, tiny_model_dir, fixture_path, tmp_path):
    """A second run gives the first run's numbers: its seeded steps (linear probe, 1-NN, UMAP + Ward) rerun on the
    first run's embeddings, read from a copy of its cache (the same keys: no new entry); and the model's embeddings of
    one split, recomputed without the cache, are the cached ones bit for bit."""
    output, first = protocol_run
    cache = shutil.copytree(output / "cache", tmp_path / "cache")
    entries = sorted(path.name for path in cache.iterdir())
    second = probes.evaluate(["kmer:4", str(tiny_model_dir)], fixture_path, None, cache, progress=False, plots=False,
                             **FAST)  # fmt: skip
    assert list(second["results"]) == list(first["results"])
    for model in first["results"]:
        assert _numbers(first["results"][model]) == _numbers(second["results"][model]), model
    assert first["table"] == second["table"]
    settings = probes.ProtocolSettings(**FAST)
    encoder = probes._encoder(str(tiny_model_dir), settings)
    split_names = [settings.train_split, settings.test_split, settings.unseen_split]
    unseen = load_splits(fixture_path, split_names, settings.max_length, settings.on_bad_sequence,
                         encoder.min_run)[settings.unseen_split]  # fmt: skip
    cached = EmbeddingCache(cache).embed_layers(encoder, unseen.sequences)
    assert sorted(path.name for path in cache.iterdir()) == entries  # every embedding above came from the cache
    np.testing.assert_array_equal(encoder.embed_layers(unseen.sequences), cached)


def test_outputs_written(protocol_run):
    output, report = protocol_run
    table = (output / "results.md").read_text()
    assert report["table"] in table and "| kmer:4 |" in table and "harmonic mean" in table
    saved = json.loads((output / "results.json").read_text())
    assert saved["settings"]["umap_components"] == 5 and saved["settings"]["seed"] == 0
    assert saved["results"]["kmer:4"]["species_1nn"]["accuracy"] == report["results"]["kmer:4"]["species_1nn"]["accuracy"]
    pngs = sorted(path.name for path in output.glob("umap_*.png"))
    assert len(pngs) == 2 and all((output / name).stat().st_size > 1000 for name in pngs)
    assert len(list((output / "cache").glob("*.npy"))) == 6  # 2 models x 3 splits


def test_cache_reused_and_keyed_by_weights(tiny_model_dir, barcodes, tmp_path, monkeypatch):
    model = BarcodeMAEModel.from_pretrained(tiny_model_dir)
    tokenizer = BarcodeMAETokenizer()
    calls = []
    original = encoders.embed_sequences
    monkeypatch.setattr(encoders, "embed_sequences", lambda *a, **k: calls.append(1) or original(*a, **k))
    cache = EmbeddingCache(tmp_path)
    encoder = encoders.from_model("tiny", model, tokenizer)
    first = cache.embed_layers(encoder, barcodes)
    assert len(calls) == 1
    again = cache.embed_layers(encoders.from_model("tiny", model, tokenizer), barcodes)
    assert len(calls) == 1  # from the cache
    np.testing.assert_array_equal(first, again)
    cache.embed_layers(encoder, barcodes[:-1])
    assert len(calls) == 2  # other sequences: new key
    with torch.no_grad():
        model.encoder.layer[0].output.dense.bias.add_(0.01)
    cache.embed_layers(encoders.from_model("tiny", model, tokenizer), barcodes)
    assert len(calls) == 3  # new weights: new key
    cache.embed_layers(encoders.from_model("tiny", model, tokenizer, layer=1), barcodes)
    assert len(calls) == 4  # new option: new key


def test_nearest_neighbour_finds_exact_match(fixture_path):
    splits = load_splits(fixture_path, ["train"])
    keys = kmer_embeddings(splits["train"].sequences, 5)
    rows = np.arange(0, len(keys), 7)
    np.testing.assert_array_equal(nearest_neighbour(keys, keys[rows], chunk_size=16), rows)
    random_keys = np.random.default_rng(0).normal(size=(500, 24)).astype(np.float32)
    np.testing.assert_array_equal(nearest_neighbour(random_keys, random_keys[::-3] * 5.0), np.arange(500)[::-3])


def test_k_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(1)
    keys, queries = rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(50, 16)).astype(np.float32)
    indices, similarities = nearest_neighbours(keys, queries, k=4, chunk_size=7)
    cosine = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (keys / np.linalg.norm(keys, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(indices, np.argsort(-cosine, axis=1)[:, :4])
    np.testing.assert_allclose(similarities, np.take_along_axis(cosine, indices, 1), atol=1e-5)


def test_perfect_clustering_has_ami_one():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 5)) * 100
    labels = np.repeat(np.array([f"BOLD:{i}" for i in range(6)]), 20)
    points = np.repeat(centres, 20, axis=0) + rng.normal(size=(120, 5))
    ami, n_clusters = probes.cluster_ami(points, labels)
    assert n_clusters == 6 and ami == pytest.approx(1.0)


def test_harmonic_mean():
    assert probes.harmonic_mean([0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert probes.harmonic_mean([1.0, 0.5, 0.25]) == pytest.approx(3 / 7)
    assert probes.harmonic_mean([1.0, 0.0, 1.0]) == 0.0


def test_kmer_embeddings():
    vectors = kmer_embeddings(["ACGTA", "acgNA", "AC"], 2)
    index = {kmer: i for i, kmer in enumerate(a + b for a in "ACGT" for b in "ACGT")}
    assert vectors.shape == (3, 16)
    expected = np.zeros(16)
    expected[[index["AC"], index["CG"], index["GT"], index["TA"]]] = 0.25
    np.testing.assert_allclose(vectors[0], expected)
    expected = np.zeros(16)
    expected[[index["AC"], index["CG"]]] = 0.5  # k-mers holding N are skipped
    np.testing.assert_allclose(vectors[1], expected)
    assert vectors[2, index["AC"]] == 1.0


def test_kmer_embeddings_do_not_depend_on_chunking():
    """k-mers never span two barcodes however the batch is chunked; a barcode shorter than k gives zeros."""
    sequences = ["ACGTA", "G", "", "TTGCAN", "acgua", "CCCCCCC"]
    whole = kmer_embeddings(sequences, 3)
    for rows in (1, 2, 4):
        np.testing.assert_array_equal(kmer_embeddings(sequences, 3, chunk_cells=rows * 64), whole)
    assert not whole[[1, 2]].any() and whole[[0, 3, 4, 5]].sum(1) == pytest.approx(1.0)


def test_joined_encoder_is_its_parts_unit_vectors_side_by_side_under_a_key_of_its_own(barcodes):
    """`kmer:6+aa:3`: each part's vector scaled to unit length, then concatenated; it needs the longest unambiguous
    run a part needs; its cache key is neither part's nor the other order's."""
    joined, kmer, amino = map(encoders.load_encoder, ("kmer:6+aa:3", "kmer:6", "aa:3"))
    parts = [vectors / np.linalg.norm(vectors, axis=1, keepdims=True) for vectors in (kmer.embed(barcodes),
                                                                                      amino.embed(barcodes))]  # fmt: skip
    np.testing.assert_allclose(joined.embed(barcodes), np.concatenate(parts, 1), rtol=1e-6)
    assert joined.name == "kmer:6+aa:3" and joined.min_run == amino.min_run == 11
    keys = [encoder.cache_key() for encoder in (joined, kmer, amino, encoders.load_encoder("aa:3+kmer:6"))]
    assert len({json.dumps(key) for key in keys}) == 4


def test_protocol_row_of_a_joined_encoder_at_660_nt(fixture_path):
    """A non-learned encoder other than kmer:K (here aa:1 inside a joined spec) is one row, described by its key."""
    report = probes.evaluate(["kmer:3+aa:1"], fixture_path, None, progress=False, plots=False, **FAST)
    assert list(report["results"]) == ["kmer:3+aa:1"]
    assert report["models"]["kmer:3+aa:1"] == {"type": "concatenated", "dims": 64 + 20,
                                               "parts": [{"kind": "kmer", "k": 3}, {"kind": "aa", "k": 1}]}  # fmt: skip
    assert report["settings"]["max_length"] == 660  # BIOSCAN-5M's input, as every command cuts


def test_translation_reads_each_barcode_in_its_reading_frame(barcodes):
    """Placed on the COI-5P reference, the fixture's barcodes translate with almost no stop codon (a wrong frame has
    one every ~20 codons); a base more or less before the first complete codon changes nothing; a barcode that cannot be placed is read in the
    frame with the fewest stops."""
    from alphabet_barcodemae import BASE_CODES, FrameLocator

    from barcodemae.encoders import AMINO_ACIDS, amino_acid_embeddings, translations

    stops = (translations(barcodes) == len(AMINO_ACIDS)).sum(1)
    assert (stops <= 1).mean() > 0.99
    first = barcodes[0]  # its first complete codon starts at its second base (as at the Folmer region's start)
    shifted = amino_acid_embeddings(["A" + first, first[1:], first], 3)
    assert (shifted[0] == shifted[2]).all() and (shifted[1] == shifted[2]).all() and shifted[2].sum() == pytest.approx(1)
    unplaced = "T" + "AAT" * 8 + "AA"  # frames: TAA TAA ... (all stops), AAT AAT ... (N), ATA ATA ... (M)
    assert not FrameLocator().locate([unplaced.encode().translate(BASE_CODES)])[1][0]
    assert "".join(AMINO_ACIDS[code] for code in translations([unplaced])[0][:8]) == "N" * 8


def test_embedding_excludes_padding_and_layers(tiny_model_dir, barcodes):
    model = BarcodeMAEModel.from_pretrained(tiny_model_dir).eval()
    tokenizer = BarcodeMAETokenizer()
    short, long = barcodes[0][:200], barcodes[1]
    batched = embed_sequences(model, tokenizer, [long, short], batch_size=2, progress=False)
    alone = embed_sequences(model, tokenizer, [short], batch_size=1, progress=False)
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)
    # layer choice, and all layers in one pass, agree with the model's own pooling
    every = embed_sequences(model, tokenizer, barcodes[:5], layers=[0, 1, 2], progress=False)
    assert every.shape == (3, 5, 32)
    encoded = tokenizer(barcodes[:5], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        output = model(**encoded, output_hidden_states=True)
    for layer in range(3):
        expected = masked_mean(output.hidden_states[layer], encoded["attention_mask"]).numpy()
        np.testing.assert_allclose(every[layer], expected, atol=1e-5)
        single = embed_sequences(model, tokenizer, barcodes[:5], layers=layer, progress=False)
        np.testing.assert_allclose(single, expected, atol=1e-5)
    np.testing.assert_allclose(embed_sequences(model, tokenizer, barcodes[:5], progress=False), every[2], atol=1e-6)
    # reading frames: the mean over start offsets 0..k-1
    frames = embed_sequences(model, tokenizer, barcodes[:3], reading_frames=True, progress=False)
    manual = np.mean(
        [embed_sequences(model, tokenizer, [s[i:] for s in barcodes[:3]], progress=False) for i in range(6)], 0
    )
    np.testing.assert_allclose(frames, manual, atol=1e-5)
    # bf16 autocast stays close to fp32
    bf16 = embed_sequences(model, tokenizer, barcodes[:5], precision="bf16", progress=False)
    cosine = (bf16 * every[2]).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(every[2], axis=1)
    assert cosine.min() > 0.99


def test_embedding_runs_only_the_layers_it_pools(tiny_model_dir, barcodes):
    model = BarcodeMAEModel.from_pretrained(tiny_model_dir).eval()
    blocks_run = []
    for index, block in enumerate(model.encoder.layer):
        block.register_forward_hook(lambda module, inputs, output, index=index: blocks_run.append(index))
    tokenizer = BarcodeMAETokenizer()
    encoded = tokenizer(barcodes[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = masked_mean(model(**encoded, output_hidden_states=True).hidden_states[0], encoded["attention_mask"])
    blocks_run.clear()
    np.testing.assert_array_equal(embed_sequences(model, tokenizer, barcodes[:4], layers=0, progress=False), expected)
    assert blocks_run == []  # layer 0 is the embedding output: no block runs
    embed_sequences(model, tokenizer, barcodes[:4], layers=[1, 0], progress=False)
    assert blocks_run == [0]


def test_int8_embeddings_stay_close_to_fp32_and_leave_the_model_unchanged(tiny_model_dir, barcodes):
    model = BarcodeMAEModel.from_pretrained(tiny_model_dir).eval()
    tokenizer = BarcodeMAETokenizer()
    fp32 = embed_sequences(model, tokenizer, barcodes[:8], progress=False)
    int8 = embed_sequences(model, tokenizer, barcodes[:8], precision="int8", progress=False)
    assert not np.array_equal(int8, fp32)  # the linear layers did run in int8
    centred = fp32 - fp32.mean(0), int8 - fp32.mean(0)  # cosine of the deviations: the raw vectors share a large mean
    cosine = (centred[0] * centred[1]).sum(1) / np.linalg.norm(centred[0], axis=1) / np.linalg.norm(centred[1], axis=1)
    assert cosine.min() > 0.99
    assert type(model.encoder.layer[0].attention.self.query) is torch.nn.Linear  # quantized a copy
    np.testing.assert_array_equal(embed_sequences(model, tokenizer, barcodes[:8], progress=False), fp32)


def test_all_layers_rows(tiny_model_dir, fixture_path):
    report = probes.evaluate([str(tiny_model_dir) + "@1", "kmer:3"], fixture_path, None, progress=False, **FAST)
    assert list(report["results"]) == [f"{tiny_model_dir}@1", "kmer:3"]
    report = probes.evaluate([str(tiny_model_dir)], fixture_path, None, progress=False, all_layers=True, **FAST)
    assert list(report["results"]) == [f"{tiny_model_dir}@{layer}" for layer in range(3)]
    # layer 2 of 2 is the last layer: the same numbers as the default
    default = probes.evaluate([str(tiny_model_dir)], fixture_path, None, progress=False, **FAST)
    assert _numbers(default["results"][str(tiny_model_dir)]) == _numbers(report["results"][f"{tiny_model_dir}@2"])


def test_unknown_model_path_fails_before_writing(fixture_path, tmp_path):
    missing, output = tmp_path / "no_such_model", tmp_path / "probes"
    with pytest.raises(FileNotFoundError, match="no_such_model.*kmer:K"):
        probes.evaluate(["kmer:3", str(missing)], fixture_path, output, progress=False)
    assert not output.exists()  # the models are checked before the output folder is made
    with pytest.raises(FileNotFoundError, match="no config.json"):
        probes.evaluate([str(tmp_path)], fixture_path, None, progress=False)


def test_missing_split(fixture_path):
    with pytest.raises(ValueError, match="test_unknown.*test_unseen"):
        probes.evaluate(["kmer:3"], fixture_path, None, progress=False, unseen_split="test_unknown")


def test_tokenizer_that_cannot_read_dna(tmp_path, fixture_path):
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    text = Tokenizer(WordLevel({"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3}, unk_token="[UNK]"))
    text.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=text, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(tmp_path)
    BertModel(BertConfig(vocab_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="cannot read DNA"):
        probes.evaluate([str(tmp_path)], fixture_path, None, progress=False)


def test_empty_query_set(fixture_metadata, tmp_path):
    data = fixture_metadata.copy()
    data.loc[data.split == "test_unseen", "genus"] = ""
    path = tmp_path / "no_unseen_genus.csv"
    data.to_csv(path, index=False)
    with pytest.raises(ValueError, match="open-world genus \\(queries\\).*'test_unseen'.*no row with a known 'genus'"):
        probes.evaluate(["kmer:3"], path, None, progress=False, **FAST)


@pytest.mark.slow
def test_cli(tmp_path, fixture_path):
    output = tmp_path / "out"
    command = [sys.executable, str(REPO / "evaluate_probes.py"), "--models", "kmer:2", "kmer:3",
               "--output_dir", str(output), "--umap_components", "5", "--umap_n_neighbors", "5",
               "--probe_max_iter", "30", "--no_progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "| kmer:2 |" in result.stdout and "| kmer:3 |" in result.stdout and "BIN AMI" in result.stdout
    report = json.loads((output / "results.json").read_text())
    assert report["data"]["data_file"] == str(fixture_path)  # the bundled fixture by default
    assert (output / "umap_kmer_3.png").exists()
    bad = subprocess.run(command[:3] + ["no/such/model"] + command[5:], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env=env)
    assert bad.returncode == 2 and "no/such/model" in bad.stderr and "Traceback" not in bad.stderr


def test_encoder_pools_the_layer_the_model_pools(barcodes):
    """A model saved with `pooling_layer=0` is embedded at layer 0 by embed/identify/cluster/evaluate, as its
    `pooler_output` is; an explicit layer still wins."""
    torch.manual_seed(0)
    model = BarcodeMAEModel(BarcodeMAEConfig(pooling_layer=0, **tiny_config_kwargs())).eval()
    tokenizer = BarcodeMAETokenizer()
    encoder = encoders.from_model("tiny", model, tokenizer)
    assert encoder.layers == [0]
    with torch.inference_mode():
        pooled = model(**tokenizer(barcodes[:1], return_tensors="pt")).pooler_output.numpy()
    assert np.allclose(encoder.embed(barcodes[:1]), pooled, atol=1e-5)
    assert encoders.from_model("tiny", model, tokenizer, layer=-1).layers == [-1]

