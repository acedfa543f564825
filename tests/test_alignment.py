"""barcodemae.alignment: identity of the shorter barcode aligned inside the longer."""

import pytest

from barcodemae.alignment import alignment_identity

BARCODE = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATTAGGAAATCCTGGATC"  # 90 nt


def test_identical_barcodes_have_identity_one():
    assert alignment_identity(BARCODE, BARCODE) == 1.0


def test_each_edit_costs_one_over_the_shorter_length():
    substituted = BARCODE[:10] + "G" + BARCODE[11:]  # A -> G
    deleted = BARCODE[:40] + BARCODE[41:]
    assert alignment_identity(BARCODE, substituted) == pytest.approx(1 - 1 / 90)
    assert alignment_identity(BARCODE, deleted) == pytest.approx(1 - 1 / 89)


def test_partial_barcode_is_not_penalised_for_the_missing_part():
    assert alignment_identity(BARCODE[20:70], BARCODE) == 1.0
    assert alignment_identity(BARCODE, BARCODE[20:70]) == 1.0  # symmetric


def test_ambiguity_codes_match_the_bases_they_stand_for():
    assert BARCODE[1] == "A"
    with_code = lambda code: BARCODE[:1] + code + BARCODE[2:]  # noqa: E731
    assert alignment_identity(BARCODE, with_code("N")) == 1.0
    assert alignment_identity(BARCODE, with_code("R")) == 1.0  # A or G
    assert alignment_identity(BARCODE, with_code("Y")) == pytest.approx(1 - 1 / 90)  # C or T
    assert alignment_identity(BARCODE.replace("T", "U"), BARCODE.lower()) == 1.0


def test_empty_barcode_has_identity_zero():
    assert alignment_identity("", BARCODE) == 0.0
