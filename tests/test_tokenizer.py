import itertools

import pytest
import torch

from tokenization_barcodemae import BarcodeMAETokenizer, kmer_vocabulary

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
