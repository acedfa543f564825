"""The barcode alphabet and length of BarcodeMAE, and where a barcode lies on the COI-5P gene, in plain Python and
numpy: the tokenizer and the configuration import it, and so does the `barcodemae` toolkit, which reads and checks
barcodes (and embeds `kmer:K` and `aa:K`) without importing transformers."""

import re

import numpy as np

NUCLEOTIDES = "ACGT"  # in the vocabulary's k-mer order
AMBIGUITY_CODES = "RYSWKMBDHVN"  # IUPAC; each is read as N, so a k-mer containing one is [UNK]
MAX_NUCLEOTIDES = 660  # the paper's: nucleotides kept per barcode (`BarcodeMAEConfig.max_sequence_length`)

_ALLOWED = NUCLEOTIDES + "U" + AMBIGUITY_CODES
_INVALID_CHARACTER = re.compile(rf"[^{_ALLOWED}{_ALLOWED.lower()}\s.\-]")


def find_invalid_character(sequence: str) -> tuple[int, str] | None:
    """(position, character) of the first character that is not a nucleotide code, gap or whitespace."""
    match = _INVALID_CHARACTER.search(sequence)
    return None if match is None else (match.start(), match.group())


# Frame registration (`register_frame`). Non-overlapping k-mers cut a barcode at 0, k, 2k, ... of *that barcode*, and
# barcodes start at different positions of the gene: two relatives whose starts differ by 1..k-1 bases share no token.
# Registration places each barcode's start on a bundled COI-5P reference and drops the 0..k-1 leading bases that put
# its first k-mer off the reference's frame (reference positions 0, k, 2k, ...). The reference: one full-length
# (658 nt) barcode per insect order of bold_insecta_coi.csv.gz's pretraining and `train` splits, the one sharing the
# most 8-mers with its order (`python scripts/make_frame_reference.py FILE` prints this table), all starting at the
# Folmer region's first base.
FRAME_REFERENCE = (  # (order, BOLD processid, offset on the first barcode, barcode)
    ("Diptera", "MOSN6435-21", 0, "AACTTTATATTTTATTTTTGGAGCTTGAGCTGGAATAGTTGGAACTTCATTAAGAATTTTAATTCGAGCTGAATTAGGACACCCTGGAGCATTTATTGGGGATGACCAAATTTATAACGTTATTGTTACAGCACATGCTTTTATTATAATTTTTTTTATAGTAATACCTATTATAATTGGAGGATTTGGAAATTGATTAGTACCATTAATATTAGGAGCTCCTGATATAGCATTCCCTCGAATAAATAATATAAGTTTTTGAATATTACCTCCATCTTTAACTCTATTAATTTCTAGAAGTATAGTAGAAAATGGAGCTGGAACAGGTTGAACAGTTTATCCTCCTCTTTCATCTGGAATTGCTCATGCCGGGGCTTCTGTTGATTTAGCTATTTTTTCTCTTCATTTAGCAGGAATTTCTTCAATTTTAGGAGCTGTAAATTTTATTACAACAGTAATTAATATACGCTCTCCAGGAATTACTCTTGATCGAATACCTTTATTTGTTTGATCTGTAGTAATTACAGCAATTTTATTACTTTTATCTCTACCTGTTTTAGCTGGAGCTATTACTATATTATTAACAGATCGAAATTTAAATACATCATTTTTTGACCCAGCGGGAGGAGGAGACCCAATTTTATACCAACATTTATTT"),
    ("Coleoptera", "GCOL9711-16", 0, "TACTTTATATTTTATTTTTGGTGCATGAGCTGGAATAGTAGGAACTTCTTTAAGAATATTAATTCGAGCTGAATTAGGAAACCCTGGATCATTAATTGGAGATGATCAAATTTATAATGTTATTGTAACTGCCCATGCTTTTGTAATAATTTTTTTTATAGTAATACCTATTATAATTGGAGGATTTGGAAATTGATTAGTTCCTTTAATATTAGGAGCTCCAGATATAGCTTTTCCACGAATAAATAATATAAGATTTTGACTTTTACCTCCTTCTTTAACTCTTCTCTTAATGAGCAGAATGGTAGAAAGTGGGGCTGGTACAGGATGAACAGTTTATCCCCCTTTATCATCTGGAATTGCCCATGCAGGAGCTTCAGTAGATTTAGCTATTTTTAGTTTACATTTAGCAGGAATTTCTTCTATTTTAGGAGCTGTAAATTTTATTACTACAATTATTAATATACGATCAATTGGAATAACATTTGATCGAATACCATTATTTGTATGATCAGTAGGAATTACTGCTTTACTTTTATTACTTTCTTTACCTGTATTAGCTGGAGCAATTACTATATTATTAACAGATCGAAATTTAAATACATCATTTTTTGATCCAGCAGGAGGAGGAGACCCTATTTTATATCAACATTTATTT"),
    ("Hymenoptera", "BBHYL854-10", 0, "AACTTTATATTTTATTTTTGGATTTTGATCAGGTATATTAGGACTATCTTTTAGAATATTAATTCGAACAGAACTAGGAATACCTGGATCAATAATTGGAGATGATCAAATTTATAATGTTATTGTAACATCACATGCATTTCTAATAATTTTTTTTATAGTTATACCTATTATAATTGGAGGATTTGGAAATTGATTAATCCCTTTAATATTAGGAGCCCCTGATATAGCATTCCCTCGATTAAATAATATAAGATTTTGATTTCTACCACCTTCAATTACCTTACTTCTATCAAGAAGAATAGTAAATTCAGGTTCAGGAACAGGTTGAACAGTATATCCACCCCTATCTAGTAATATATCACATGCAGGAGCATCTGTAGATTTAACTATTTTTTCTTTACATTTAGCAGGAATTTCATCAATTTTAGGAGCAATTAATTTCATTTCAACTATAATTAATATACGAGTAAAAGGAATAAATTTTGAACGAATACCTTTATTTATTTGAGCAGTATCATTAACAGCATTATTACTATTACTATCATTACCAGTATTAGCAGGTGCAATTACTATATTATTAACAGATCGAAATTTAAATACTTCATTTTTTGATCCATCTGGGGGAGGAGATCCAATTCTTTATCAACATTTATTT"),
    ("Lepidoptera", "RDLQF063-06", 0, "AACATTATATTTTATTTTTGGAATTTGAGCAGGTATAGTAGGAACCTCTTTAAGATTACTAATTCGAGCTGAATTAGGAACTCCCGGATCTTTAATTGGTGACGATCAAATTTATAATACTATTGTTACAGCTCATGCTTTCATTATAATTTTTTTTATAGTTATACCTATTATAATTGGAGGATTTGGAAATTGATTAGTACCATTAATATTAGGAGCTCCAGATATAGCATTTCCACGAATAAATAATATAAGTTTTTGATTACTTCCCCCCTCTTTAACTTTATTAATTTCAAGAAGAATTGTAGAAAATGGAGCAGGAACAGGATGAACAGTGTACCCCCCACTTTCATCTAATATTGCTCATGGAGGAAGTTCTGTAGATTTAGCTATTTTTTCCCTTCACTTAGCTGGTATTTCTTCTATTTTAGGAGCTATTAATTTTATTACTACAATTATTAATATACGATTAAACAATTTATCTTTTGATCAAATACCTTTATTTATCTGAGCTGTAGGAATTACTGCATTTTTATTATTATTATCTTTACCTGTTTTAGCAGGAGCTATTACTATATTATTAACAGATCGAAATTTAAATACATCATTTTTTGACCCTGCAGGAGGAGGAGATCCAATTTTATATCAACATTTATTT"),
)
# The placement is a vote of seed hits, as in BLAST's or minimap2's seeding: every seed of the barcode's first
# FRAME_WINDOW nucleotides that has one reference position (in whichever reference barcodes hold it) votes for the
# diagonal (reference position - barcode position); the diagonal with the most votes places the barcode, if it has
# FRAME_MIN_VOTES of them.
# The seed is spaced (11 nt, the first two bases of each of four codons, in any phase): COI varies mostly at third codon
# positions, so spaced seeds still hit across orders and phyla. These settings agree with an edlib alignment on every
# aligned barcode of the main file's `val` split (RESULTS.md, "Reading frames").
FRAME_SEED = (0, 1, 3, 4, 6, 7, 9, 10)
FRAME_WINDOW = 200
FRAME_MIN_VOTES = 3
# The reference's codons start at its positions 1, 4, 7, ...: the Folmer region's first base is the third base of a
# codon (of 2,000 barcodes of bold_insecta_coi.csv.gz's `train` translated in each frame with the invertebrate
# mitochondrial code, this one has 8 stop codons, the others 12,080 and 50,242).
FRAME_FIRST_CODON = 1
# bytes -> base codes: A C G T (U) in either case 0-3, anything else 4 (`bytes.translate` table)
BASE_CODES = bytes(
    {ord(c): i for i, bases in enumerate(("Aa", "Cc", "Gg", "TtUu")) for c in bases}.get(byte, 4) for byte in range(256)
)


class FrameLocator:
    """Places barcodes on the bundled COI-5P reference: where their first base lies, by a vote of spaced-seed hits."""

    def __init__(self, reference=FRAME_REFERENCE, seed=FRAME_SEED, window=FRAME_WINDOW, min_votes=FRAME_MIN_VOTES):
        self.seed, self.window, self.min_votes = seed, window, min_votes
        # seed value -> its reference position; -1 where no reference barcode has it, or they have it at two places
        self.table = np.full(4 ** len(seed), -1, np.int64)
        for _, _, offset, barcode in reference:
            values, valid = self._seeds(np.frombuffer(barcode.encode().translate(BASE_CODES), np.uint8)[None])
            values, positions = values[0, valid[0]], np.flatnonzero(valid[0]) + offset
            repeated = values[np.bincount(values, minlength=len(self.table))[values] > 1]
            elsewhere = values[(self.table[values] >= 0) & (self.table[values] != positions)]
            self.table[values] = np.where(self.table[values] == -2, -2, positions)
            self.table[np.concatenate([repeated, elsewhere])] = -2  # ambiguous from now on
        self.table[self.table == -2] = -1
        self.reference_length = max(offset + len(barcode) for _, _, offset, barcode in reference)

    def _seeds(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, positions) seed values of rows of base codes (0-3 a base, anything else not), and which are valid."""
        positions = codes.shape[1] - self.seed[-1]
        values = np.zeros((len(codes), max(positions, 0)), np.int32)
        valid = np.ones(values.shape, bool)
        is_base, bases = codes < 4, (codes & 3).astype(np.int32)
        for index, offset in enumerate(self.seed):
            valid &= is_base[:, offset : offset + positions]
            values |= bases[:, offset : offset + positions] << (2 * index)
        return values, valid

    def locate(self, sequences: list[bytes], chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(start, aligned): each sequence's first base on the reference (may be negative), and whether it was placed.

        `sequences`: base codes as bytes (0-3 A C G T, anything else not a base: `BASE_CODES`), gaps removed;
        voted in chunks of `chunk` sequences (the vote counters stay in cache).
        """
        located = [self._locate_chunk(sequences[start : start + chunk]) for start in range(0, len(sequences), chunk)]
        if not located:
            return np.zeros(0, np.int64), np.zeros(0, bool)
        return np.concatenate([start for start, _ in located]), np.concatenate([aligned for _, aligned in located])

    def _locate_chunk(self, sequences: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        window = np.frombuffer(b"".join(s[: self.window].ljust(self.window, b"\4") for s in sequences), np.uint8)
        values, valid = self._seeds(window.reshape(len(sequences), self.window))
        positions = values.shape[1]
        diagonals = positions + self.reference_length  # a diagonal plus `positions`, in 1..diagonals-1
        hits = self.table[values]
        cells = (np.arange(len(sequences))[:, None] * diagonals + hits - np.arange(positions) + positions)[valid & (hits >= 0)]
        votes = np.bincount(cells, minlength=len(sequences) * diagonals).reshape(len(sequences), diagonals)
        top = votes.argmax(1)
        return top - positions, votes[np.arange(len(sequences)), top] >= self.min_votes
