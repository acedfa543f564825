"""The barcode alphabet and length of BarcodeMAE, in plain Python: the tokenizer and the configuration import it, and
so does the `barcodemae` toolkit, which reads and checks barcodes (and embeds `kmer:K`) without importing
transformers."""

import re

NUCLEOTIDES = "ACGT"  # in the vocabulary's k-mer order
AMBIGUITY_CODES = "RYSWKMBDHVN"  # IUPAC; each is read as N, so a k-mer containing one is [UNK]
MAX_NUCLEOTIDES = 660  # the paper's: nucleotides kept per barcode (`BarcodeMAEConfig.max_sequence_length`)

_ALLOWED = NUCLEOTIDES + "U" + AMBIGUITY_CODES
_INVALID_CHARACTER = re.compile(rf"[^{_ALLOWED}{_ALLOWED.lower()}\s.\-]")


def find_invalid_character(sequence: str) -> tuple[int, str] | None:
    """(position, character) of the first character that is not a nucleotide code, gap or whitespace."""
    match = _INVALID_CHARACTER.search(sequence)
    return None if match is None else (match.start(), match.group())
