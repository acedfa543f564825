"""The barcodes of an index, 4 bits a nucleotide (`ALPHABET`: every IUPAC code), decoded when asked for; and the 8-byte
hash by which `index add` recognises a barcode it already holds."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from barcodemae.errors import UserError

ALPHABET = "ACGTRYSWKMBDHVNU"  # 4-bit codes of the stored barcodes: the nucleotides, the IUPAC ambiguity codes, U
_CODES = np.full(256, 255, dtype=np.uint8)
for _code, _base in enumerate(ALPHABET):
    _CODES[ord(_base)] = _code
_BASES = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)


def barcode_hashes(sequences: Sequence[str]) -> np.ndarray:
    """An 8-byte hash of each barcode (uint64): how `index add` recognises a barcode it already holds."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(sequence.encode(), digest_size=8).digest(), "little")
                        for sequence in sequences), dtype=np.uint64, count=len(sequences))  # fmt: skip


def pack_sequences(sequences: Sequence[str]) -> dict[str, np.ndarray]:
    """`packed` (two nucleotides a byte), `offsets` (N + 1, where each barcode's bytes start), `lengths`."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    codes = _CODES[np.frombuffer("".join(s + "A" * (len(s) % 2) for s in sequences).encode(), dtype=np.uint8)]
    if (codes == 255).any():
        raise UserError(f"a barcode holds a character that is not one of {ALPHABET} (clean barcodes first)")
    packed = (codes[0::2] << 4) | codes[1::2]
    offsets = np.concatenate([[0], np.cumsum((lengths + 1) // 2)])
    return {"packed": packed, "offsets": offsets, "lengths": lengths.astype(np.uint16)}


class PackedSequences:
    """Read-only list of barcodes stored 4 bits a nucleotide (`pack_sequences`), decoded when asked for."""

    def __init__(self, packed: np.ndarray, offsets: np.ndarray, lengths: np.ndarray):
        self.packed, self.offsets, self.lengths = packed, offsets, lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> str:
        data = np.asarray(self.packed[self.offsets[index] : self.offsets[index + 1]])
        codes = np.stack([data >> 4, data & 15], axis=1).reshape(-1)[: self.lengths[index]]
        return _BASES[codes].tobytes().decode()
