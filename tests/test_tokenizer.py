import itertools
import json

import numpy as np
import pytest
import torch
from conftest import run_clean_python

from barcodemae.encoders import DNA_PROBE
from tokenization_barcodemae import AMBIGUITY_CODES, BarcodeMAETokenizer, kmer_vocabulary

PAD_ID_K6 = 4**6 + 2


@pytest.fixture(scope="module")
def tokenizer():
    return BarcodeMAETokenizer()


def kmer_id(kmer: str) -> int:
    return 2 + ["".join(p) for p in itertools.product("ACGT", repeat=len(kmer))].index(kmer)


def test_vocabulary_matches_original_releases():
    vocab = kmer_vocabulary(6)
    assert len(vocab) == 4**6 + 3
    assert vocab["[MASK]"] == 0 and vocab["[UNK]"] == 1 and vocab["[PAD]"] == PAD_ID_K6
    assert vocab["AAAAAA"] == 2 and vocab["AAAAAC"] == 3 and vocab["TTTTTT"] == 4**6 + 1
    assert kmer_vocabulary(4)["ACGT"] == kmer_id("ACGT")


def test_known_kmer_ids_and_partial_kmer_dropped(tokenizer):
    ids = tokenizer("ACGTACGGGGGGTTTTTTCA")["input_ids"]  # 3 full 6-mers + 2 trailing bases
    assert ids == [kmer_id("ACGTAC"), kmer_id("GGGGGG"), kmer_id("TTTTTT")]
    assert tokenizer.convert_ids_to_tokens(ids) == ["ACGTAC", "GGGGGG", "TTTTTT"]


def test_normalisation(tokenizer):
    expected = tokenizer("ACGTACGGGGGGTTTTTT")["input_ids"]
    assert tokenizer("acgtac gggggg\nttttTT")["input_ids"] == expected  # case, whitespace, FASTA newlines
    assert tokenizer("ACG-TAC..GGGGGG\r\nTTTTTT")["input_ids"] == expected  # alignment gaps
    assert tokenizer("ACGUACGGGGGGUUUUUU")["input_ids"] == expected  # RNA
    assert tokenizer("acguacggggggtttttt")["input_ids"] == expected


def test_ambiguity_codes_are_unknown(tokenizer):
    for code in "NRYSWKMBDHVnry":
        ids = tokenizer(f"AAAAA{code}CCCCCC")["input_ids"]
        assert ids == [1, kmer_id("CCCCCC")], code


def test_other_k():
    tokenizer = BarcodeMAETokenizer(k_mer=4)
    assert tokenizer("ACGTTTTTAC")["input_ids"] == [kmer_id("ACGT"), kmer_id("TTTT")]
    assert tokenizer.model_max_length == 165 and len(tokenizer) == 4**4 + 3


def test_padding_and_truncation(tokenizer, barcodes):
    batch = tokenizer(barcodes, padding=True, truncation=True, return_tensors="pt")
    lengths = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape == (len(barcodes), 110)  # 660 nt / 6, longer barcodes truncated
    assert tokenizer.model_max_length == 110
    for row, barcode in enumerate(barcodes):
        assert lengths[row] == min(len(barcode) // 6, 110)
        assert torch.all(batch["input_ids"][row, lengths[row]:] == PAD_ID_K6)
        assert torch.all(batch["input_ids"][row, : lengths[row]] != PAD_ID_K6)
    assert bool((batch["attention_mask"] == (batch["input_ids"] != PAD_ID_K6)).all())


def test_invalid_characters_name_index_and_character(tokenizer):
    with pytest.raises(ValueError, match=r"sequence 2 has the character 'X' at position 4"):
        tokenizer(["ACGTACGT", "ACGTAC", "ACGTXACGT"])
    for bad in ("ACGTAC1", ">seq1 ACGTAC", "ACGTAC*"):
        with pytest.raises(ValueError, match="sequence 0"):
            tokenizer(bad)


def test_opt_out_reads_invalid_characters_as_unknown():
    tokenizer = BarcodeMAETokenizer(strict=False)
    assert tokenizer("ACGTXACCCCCC")["input_ids"] == [1, kmer_id("CCCCCC")]


def test_empty_sequences_are_rejected(tokenizer):
    for empty in ("", "ACG", " \n-- "):
        with pytest.raises(ValueError, match="sequence 1 has no complete 6-mer"):
            tokenizer(["ACGTACGT", empty])


def test_save_load_round_trip(tmp_path):
    tokenizer = BarcodeMAETokenizer(k_mer=5, max_sequence_length=500, strict=False)
    tokenizer.save_pretrained(tmp_path)
    reloaded = BarcodeMAETokenizer.from_pretrained(tmp_path)
    assert (reloaded.k_mer, reloaded.max_sequence_length, reloaded.strict) == (5, 500, False)
    assert reloaded.model_max_length == 100 and reloaded.pad_token_id == 4**5 + 2
    sequence = "acgtx" * 30
    assert reloaded(sequence)["input_ids"] == tokenizer(sequence)["input_ids"]


# ---- the numpy path gives what the Rust pipeline gives --------------------------------------------------------------


class RustPipelineTokenizer(BarcodeMAETokenizer):
    """The tokenizer with its numpy path turned off: every call runs the Rust pipeline."""

    def _encode_in_numpy(self, *args, **kwargs):
        return None


def outcome(tokenizer, inputs, **kwargs):
    """What a call gives, comparable across the two paths: each output's type, dtype and values, or the error."""
    try:
        encoded = tokenizer(inputs, **kwargs)
    except Exception as error:  # noqa: BLE001 - the two paths must raise the same
        return type(error).__name__, str(error)
    return {
        key: (type(value).__name__, str(getattr(value, "dtype", "")),
              [row.tolist() if isinstance(row, np.ndarray) else row for row in value.tolist()]
              if isinstance(value, (np.ndarray, torch.Tensor)) else value)
        for key, value in encoded.items()
    }


CALLS = [
    {},
    dict(padding=True, truncation=True, return_tensors="pt"),
    dict(padding=True, truncation=True),
    dict(padding="max_length", truncation=True, return_tensors="np"),
    dict(padding="longest", truncation=True, max_length=4, return_tensors="pt"),
    dict(padding="max_length", max_length=4),  # rows longer than max_length are not truncated
    dict(truncation=True, max_length=3),
    dict(padding=True, pad_to_multiple_of=8, return_tensors="np"),
    dict(return_tensors="pt"),
    dict(padding=True, return_attention_mask=False, return_tensors="pt"),
]
EDGE_CASES = [
    "ACGTACGGGGGGTTTTTTCA",  # partial trailing k-mer
    ["acgtac gggggg\nttttTT\r\n", "ACG-TAC..GGGGGG\tTT\vTT\fTT"],  # case, whitespace, gaps
    ["ACGUACGGGGGGUUUUUU", "acguacggggggtttttt"],  # RNA
    [f"AAAAA{code}CCCCCCGGG" for code in AMBIGUITY_CODES + AMBIGUITY_CODES.lower()],
    ["ACGT" * 300, "ACGTAC"],  # over-long
    ["ACGTACGT"],  # batch of one
    ("ACGTACGT", "GGGGGGAAAAAA"),  # a tuple
    ["ACGTACGT", ""], ["ACGTACGT", "ACG"], " \n-- ",  # no complete k-mer
    ["ACGTACGT", "ACGTAC", "ACGTXACGT"], "ACGTAC1", ">seq1 ACGTAC", "ACGT[MASK]ACGTAC",  # not DNA
    "ACGTAC\x00ACGTAC", "ACGTAC\x1cACGTAC", "ACGTACé", "ACGTAC\u00a0ACGTAC",  # NUL, non-ASCII: through Rust
    ["ACGTACGT", 7],
]


@pytest.mark.parametrize("call", CALLS, ids=lambda call: ",".join(f"{key}={value}" for key, value in call.items()))
def test_numpy_path_equals_rust_pipeline_on_edge_cases(call):
    for strict, k in ((True, 6), (False, 4)):
        fast, rust = BarcodeMAETokenizer(k_mer=k, strict=strict), RustPipelineTokenizer(k_mer=k, strict=strict)
        for inputs in EDGE_CASES:
            assert outcome(fast, inputs, **call) == outcome(rust, inputs, **call), (strict, k, inputs)


def test_numpy_path_equals_rust_pipeline_on_all_fixture_barcodes(fixture_metadata):
    barcodes = list(fixture_metadata.dna_barcode)
    fast, rust = BarcodeMAETokenizer(), RustPipelineTokenizer()
    for call in CALLS[:4]:
        assert outcome(fast, barcodes, **call) == outcome(rust, barcodes, **call), call
    assert fast(barcodes, padding=True, truncation=True).encodings is None  # the numpy path ran
    assert rust(barcodes[:2], padding=True, truncation=True).encodings is not None


def test_uncommon_calls_run_the_rust_pipeline(barcodes):
    tokenizer = BarcodeMAETokenizer(strict=False)
    for inputs, call in [
        (barcodes[:2], dict(return_offsets_mapping=True)),
        (barcodes[:2], dict(padding=True, padding_side="left")),
        (barcodes[:2], dict(return_length=True)),
        (["ACGTXACGT"], {}),  # a character only Rust reads
        (["ACGTAC\u00a0ACGTAC"], {}),  # Unicode whitespace, which Rust removes
    ]:
        encoded = tokenizer(inputs, **call)
        assert encoded.encodings is not None, (inputs, call)
        assert encoded["input_ids"] == RustPipelineTokenizer(strict=False)(inputs, **call)["input_ids"]
    left = BarcodeMAETokenizer(truncation_side="left")
    assert left(barcodes, truncation=True).encodings is not None
    assert outcome(left, barcodes, truncation=True) == outcome(RustPipelineTokenizer(truncation_side="left"), barcodes,
                                                               truncation=True)


def test_saved_tokenizer_loads_through_auto_tokenizer_and_takes_the_numpy_path(tmp_path, barcodes):
    tokenizer = BarcodeMAETokenizer()
    tokenizer.save_pretrained(tmp_path / "folder")
    expected = RustPipelineTokenizer()(barcodes, padding=True, truncation=True, return_tensors="np")
    np.save(tmp_path / "sequences.npy", np.array(barcodes))
    code = f"""
import numpy as np
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "folder")!r}, trust_remote_code=True)
assert type(tokenizer).__name__ == "BarcodeMAETokenizer" and tokenizer.is_fast
sequences = list(np.load({str(tmp_path / "sequences.npy")!r}))
encoded = tokenizer(sequences, padding=True, truncation=True, return_tensors="np")
assert encoded.encodings is None  # no Rust Encoding objects: the numpy path ran
np.save("input_ids.npy", encoded["input_ids"])
"""
    run_clean_python(code, tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "user" / "input_ids.npy"), expected["input_ids"])


# ------------------------------------------------------------------------------------------------- frame registration


@pytest.fixture(scope="module")
def registering():
    return BarcodeMAETokenizer(register_frame=True)


@pytest.fixture(scope="module")
def clean_barcodes(fixture_metadata) -> list[str]:
    """Every 10th fixture barcode of A/C/G/T only (a leading base added below is then a real base)."""
    return [barcode for barcode in fixture_metadata.dna_barcode.iloc[::10] if set(barcode) <= set("ACGT")]


@pytest.mark.slow
def test_registration_is_off_by_default_and_saved_with_the_tokenizer(tmp_path, registering):
    assert BarcodeMAETokenizer().register_frame is False
    registering.save_pretrained(tmp_path / "folder")
    assert json.loads((tmp_path / "folder" / "tokenizer_config.json").read_text())["register_frame"] is True
    code = f"""
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "folder")!r}, trust_remote_code=True)
assert tokenizer.register_frame is True
print(tokenizer("A" + {DNA_PROBE!r})["input_ids"])
"""
    printed = run_clean_python(code, tmp_path).stdout
    assert json.loads(printed) == registering("A" + DNA_PROBE)["input_ids"]
    assert registering("A" + DNA_PROBE)["input_ids"] != BarcodeMAETokenizer()("A" + DNA_PROBE)["input_ids"]


def test_extra_leading_bases_give_the_same_tokens_after_registration(registering, clean_barcodes):
    rng = np.random.default_rng(0)
    for barcode in clean_barcodes:
        expected = registering(barcode)["input_ids"]
        for extra in range(1, 6):
            prefix = "".join(rng.choice(list("ACGT"), extra))
            ids = registering(prefix + barcode)["input_ids"]
            # at most one leading k-mer holds added bases; the rest are the barcode's own tokens in the same frame
            assert ids == expected or ids[1:] == expected, (extra, barcode[:30])
    # without registration one added base changes every token: the property above is registration's doing
    plain, barcode = BarcodeMAETokenizer(), clean_barcodes[0]
    shifted, original = plain("A" + barcode)["input_ids"], plain(barcode)["input_ids"]
    assert len(set(shifted) & set(original)) < len(original) / 4


def test_registration_only_drops_leading_bases(registering, clean_barcodes):
    plain = BarcodeMAETokenizer()
    placement = registering.frame_registration(clean_barcodes)
    assert set(placement["dropped_bases"].tolist()) == set(range(6))  # the fixture holds barcodes in every frame
    for barcode, dropped in zip(clean_barcodes, placement["dropped_bases"]):
        assert registering(barcode)["input_ids"] == plain(barcode[dropped:])["input_ids"]
    starts = placement["reference_start"][placement["aligned"]]
    np.testing.assert_array_equal((starts + placement["dropped_bases"][placement["aligned"]]) % 6, 0)


def test_barcodes_that_do_not_align_stay_as_they_are(registering):
    rng = np.random.default_rng(1)
    random_dna = "".join(rng.choice(list("ACGT"), 600))
    short = DNA_PROBE[3:15]  # 12 nt of COI: two seeds, too few to place
    placement = registering.frame_registration([random_dna, short, "NNNNNNNNNNNNACGTAC"])
    assert placement["aligned"].tolist() == [False, False, False]
    assert placement["dropped_bases"].tolist() == [0, 0, 0]
    for sequence in (random_dna, short):
        assert registering(sequence)["input_ids"] == BarcodeMAETokenizer()(sequence)["input_ids"]


def test_registration_agrees_with_an_edlib_alignment(registering, clean_barcodes):
    """The frame of the seed vote equals the frame of the bulk of an edlib alignment to the same reference."""
    from barcodemae.alignment import reference_start
    from alphabet_barcodemae import FRAME_REFERENCE, FRAME_WINDOW

    references = [(offset, barcode) for *_, offset, barcode in FRAME_REFERENCE]
    placement = registering.frame_registration(clean_barcodes)
    by_edlib = [reference_start(barcode, references, FRAME_WINDOW) for barcode in clean_barcodes]
    assert placement["aligned"].all() and sum(start is not None for start in by_edlib) >= 0.98 * len(by_edlib)
    pairs = [(ours, theirs) for ours, theirs in zip(placement["reference_start"], by_edlib) if theirs is not None]
    agree = np.mean([(ours - theirs) % 6 == 0 for ours, theirs in pairs])
    assert agree >= 0.99, agree


def test_registration_is_the_same_on_the_numpy_and_rust_paths(registering, barcodes):
    numpy_ids = registering(barcodes, padding=True, truncation=True)["input_ids"]
    rust_ids = registering(barcodes, padding=True, truncation=True, return_offsets_mapping=True)["input_ids"]
    assert rust_ids == numpy_ids
    gapped = ["-." + barcode[:1] + "\n" + barcode[1:5].lower() + "--" + barcode[5:] for barcode in barcodes]
    assert registering(gapped, padding=True, truncation=True, return_offsets_mapping=True)["input_ids"] == numpy_ids
    assert registering(gapped, padding=True, truncation=True)["input_ids"] == numpy_ids
