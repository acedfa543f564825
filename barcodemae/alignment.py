"""Alignment identity between two barcodes, the measure BLAST and VSEARCH rank hits by (edlib's edit distance)."""

from __future__ import annotations

import re

import edlib

IUPAC_BASES = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
    "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip
_MATCHING_CODES = [(a, b) for a in IUPAC_BASES for b in IUPAC_BASES if a < b and set(IUPAC_BASES[a]) & set(IUPAC_BASES[b])]
_DROP_PLAIN_BASES = str.maketrans("", "", "ACGT")


def alignment_identity(a: str, b: str) -> float:
    """1 - edit distance / length of the shorter barcode, aligned anywhere inside the longer one (end gaps of the
    longer are free: a partial barcode is not penalised for the part it lacks). An ambiguity code (IUPAC, U = T) matches
    every base it stands for. 0 when either is empty."""
    short, long = sorted((a.upper(), b.upper()), key=len)
    if not short:
        return 0.0
    plain = not (short + long).translate(_DROP_PLAIN_BASES)  # the fast path: only A, C, G, T
    result = edlib.align(short, long, mode="HW", task="distance", additionalEqualities=None if plain else _MATCHING_CODES)
    return 1.0 - result["editDistance"] / len(short)


def reference_start(barcode: str, references: list[tuple[int, str]], window: int, max_edit_fraction: float = 0.3):
    """Where the barcode's first base lies on a reference by edlib: its first `window` nt aligned inside each
    (offset, reference barcode), the best alignment's most frequent diagonal of matching bases, plus that reference's
    offset. None when even the best alignment has more than `max_edit_fraction` edits per aligned base. The check of
    the tokenizer's seed vote (`register_frame`)."""
    best = None
    for offset, reference in references:
        alignment = edlib.align(barcode[:window], reference, mode="HW", task="path")
        if best is None or alignment["editDistance"] < best[0]:
            query, position, diagonals = 0, alignment["locations"][0][0], {}
            for length, operation in re.findall(r"(\d+)([=XID])", alignment["cigar"]):
                length = int(length)
                if operation == "=":
                    diagonals[position - query] = diagonals.get(position - query, 0) + length
                query += length if operation in "=XI" else 0
                position += length if operation in "=XD" else 0
            best = (alignment["editDistance"], max(diagonals, key=diagonals.get, default=0) + offset)
    return best[1] if best[0] <= max_edit_fraction * min(len(barcode), window) else None
