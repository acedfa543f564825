"""Alignment identity between two barcodes, the measure BLAST and VSEARCH rank hits by (edlib's edit distance).

Two measures: `alignment_identity` ("infix": the shorter barcode aligned inside the longer, every base of it counted)
and `overlap_identity` ("overlap", the default of `identify` and `cluster`): the same, except that the part of the
shorter barcode hanging over an end of the longer is not counted, when at least `DEFAULT_MIN_OVERLAP` nt overlap
(barcodes covering shifted stretches of the gene; VSEARCH's default identity likewise ignores terminal gaps).
`identities` aligns many pairs on `alignment_threads()` threads (edlib releases the GIL while it aligns).
"""

from __future__ import annotations

import functools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import edlib

from barcodemae.errors import UserError

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


DEFAULT_MIN_OVERLAP = 100  # nt: an overlap shorter than this is no evidence (VSEARCH and BOLD's engine use 100+)
_ANCHOR = 10  # matching bases in a row that mark where an overhang ends and the alignment proper begins


def _overhang(operations) -> int:
    """Bases of the shorter barcode hanging over the end of the longer where an infix alignment's `operations`
    ((length, operation) pairs from that end, read lazily) begin (at the longer's first base): at the first run of
    `_ANCHOR` matches, the shorter's bases before it less the longer's (0 when none hang over). The aligner may scatter
    chance matches through an overhang; the first run of matches is where the alignment proper starts."""
    query = target = 0
    for length, operation in operations:
        if operation == "=" and length >= _ANCHOR:
            return max(0, query - target)
        query += length if operation in "=XI" else 0
        target += length if operation in "=XD" else 0
    return 0


_OPERATION = re.compile(r"(\d+)([=XID])")
_OPERATION_REVERSED = re.compile(r"([=XID])(\d+)")  # in the CIGAR read backwards: operation, then reversed digits


def _operations_from_start(cigar: str):
    return ((int(found[1]), found[2]) for found in _OPERATION.finditer(cigar))


def _operations_from_end(cigar: str):
    return ((int(found[2][::-1]), found[1]) for found in _OPERATION_REVERSED.finditer(cigar[::-1]))


def overlap_alignment(a: str, b: str, min_overlap: int = DEFAULT_MIN_OVERLAP) -> tuple[float, int]:
    """(identity, overlap): `alignment_identity`, except that a shorter barcode hanging over an end of the longer one
    (the two cover different stretches of the gene) is not charged for the overhang: the part of the shorter that lies
    against the longer is aligned inside it again and identity = 1 - its edits / its length, when that overlap is at
    least `min_overlap` nt; otherwise the infix identity over the whole shorter barcode. Ambiguity codes as in
    `alignment_identity`. The overhang is found from the infix alignment's end gaps, so one beyond about 40-45% of the
    shorter barcode is not recovered (the best infix alignment then places it by chance) and costs as before."""
    short, long = sorted((a.upper(), b.upper()), key=len)
    if not short:
        return 0.0, 0
    plain = not (short + long).translate(_DROP_PLAIN_BASES)
    equalities = None if plain else _MATCHING_CODES
    # one call with the path: most pairs need it (barcodes that start at the same base touch the longer's start)
    found = edlib.align(short, long, mode="HW", task="path", additionalEqualities=equalities)
    distance, (start, end) = found["editDistance"], found["locations"][0]
    infix = (1.0 - distance / len(short), len(short))
    if distance == 0 or (start > 0 and end < len(long) - 1):  # inside the longer: nothing hangs over
        return infix
    head = _overhang(_operations_from_start(found["cigar"])) if start == 0 else 0
    tail = _overhang(_operations_from_end(found["cigar"])) if end == len(long) - 1 else 0
    piece = short[head : len(short) - tail]
    if len(piece) < min_overlap or len(piece) == len(short):
        return infix
    distance = edlib.align(piece, long, mode="HW", task="distance", additionalEqualities=equalities)["editDistance"]
    return max(infix[0], 1.0 - distance / len(piece)), len(piece)


def overlap_identity(a: str, b: str, min_overlap: int = DEFAULT_MIN_OVERLAP) -> float:
    """The identity of `overlap_alignment`."""
    return overlap_alignment(a, b, min_overlap)[0]


IDENTITY_MEASURES = {"overlap": overlap_identity, "infix": alignment_identity}
DEFAULT_MEASURE = "overlap"  # chosen on the shared data's val splits at four reference densities (bench_densities.py)


def identity_measure(name: str):
    """The identity function called `name` (one of `IDENTITY_MEASURES`)."""
    if name not in IDENTITY_MEASURES:
        raise UserError(f"the identity measure must be one of {', '.join(IDENTITY_MEASURES)}, got {name!r}")
    return IDENTITY_MEASURES[name]


def alignment_threads() -> int:
    """How many threads align: `OMP_NUM_THREADS` when set (the variable that sizes torch's thread pool too, so
    `OMP_NUM_THREADS=1` keeps everything on one core), else the CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # "4,2": nested levels, the first counts
    if not value:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"OMP_NUM_THREADS must be a whole number of threads, at least 1, got {value!r}")
    return int(value)


@functools.lru_cache(maxsize=None)
def _thread_pool(threads: int) -> ThreadPoolExecutor:
    """One pool per thread count, kept for the process: callers that align a few pairs at a time pay no start-up."""
    return ThreadPoolExecutor(threads, thread_name_prefix="align")


if hasattr(os, "register_at_fork"):  # a forked child (a data loader worker) starts without the threads
    os.register_at_fork(after_in_child=_thread_pool.cache_clear)


_CHUNK = 256  # pairs one thread aligns per task: few tasks, yet a progress bar that moves


def identities(pairs: Sequence[tuple[str, str]], measure: str = DEFAULT_MEASURE, progress: bool = False) -> list[float]:
    """The identity by `measure` of each (a, b) of `pairs`, in order, aligned on `alignment_threads()` threads; the
    values do not depend on the thread count. `progress`: a bar of pairs aligned."""
    from tqdm.auto import tqdm

    identity, threads = identity_measure(measure), alignment_threads()
    size = max(1, min(_CHUNK, -(-len(pairs) // threads)))
    chunks = [pairs[start : start + size] for start in range(0, len(pairs), size)]
    aligned = (_thread_pool(threads).map if threads > 1 and len(chunks) > 1 else map)(
        lambda chunk: [identity(a, b) for a, b in chunk], chunks
    )
    values: list[float] = []
    with tqdm(total=len(pairs), desc="aligning", unit="pair", leave=False, disable=not progress) as bar:
        for chunk in aligned:
            values += chunk
            bar.update(len(chunk))
    return values
