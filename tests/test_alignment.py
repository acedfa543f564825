"""barcodemae.alignment: identity of the shorter barcode aligned inside the longer."""

import os

import pytest

from barcodemae.alignment import alignment_identity, alignment_threads, identities
from barcodemae.errors import UserError

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


def test_alignment_threads_follow_omp_num_threads_else_the_usable_cpus(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert alignment_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert alignment_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "0")
    with pytest.raises(UserError, match="OMP_NUM_THREADS must be a whole number of threads, at least 1, got '0'"):
        alignment_threads()


def test_identities_are_in_the_order_of_the_pairs_on_any_thread_count(monkeypatch):
    pairs = [(BARCODE, BARCODE[: 90 - edits % 60] + "G" * (edits % 60)) for edits in range(600)]  # many chunks
    expected = [alignment_identity(a, b) for a, b in pairs]
    for threads in ("1", "2", "5"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        assert identities(pairs, "infix") == expected
