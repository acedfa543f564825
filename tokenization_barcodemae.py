"""BarcodeMAE tokenizer: non-overlapping k-mers of DNA, in numpy for the common call, else the Rust pipeline;
optionally registered to one reading frame of the COI-5P barcode region (`register_frame`)."""

import itertools

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import BatchEncoding, PreTrainedTokenizerFast
from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

try:
    from .alphabet_barcodemae import AMBIGUITY_CODES, NUCLEOTIDES, FrameLocator, find_invalid_character
except ImportError:
    from alphabet_barcodemae import AMBIGUITY_CODES, NUCLEOTIDES, FrameLocator, find_invalid_character

SPECIAL_TOKENS = ("[MASK]", "[UNK]")  # ids 0 and 1, before the k-mers, as in the original releases
PAD_TOKEN = "[PAD]"  # id 4**k + 2, after the k-mers

_GAPS_AND_WHITESPACE = " \t\n\r\v\f.-"  # the ASCII characters the normaliser removes
_REMOVED_CHARACTERS = str.maketrans("", "", _GAPS_AND_WHITESPACE)

# The numpy path reads a batch joined by NUL as bytes and translates each byte to a code: A C G T/U (either case)
# 0-3, an ambiguity code 4, the separator 5, anything else 6 (a sequence with such a character goes to Rust).
_AMBIGUOUS, _SEPARATOR, _OTHER = 4, 5, 6
_BYTE_CODE = {
    character: code
    for code, characters in enumerate(("Aa", "Cc", "Gg", "TtUu", AMBIGUITY_CODES + AMBIGUITY_CODES.lower(), "\0"))
    for character in characters
}
_BYTE_CODES = bytes(_BYTE_CODE.get(chr(byte), _OTHER) for byte in range(256))  # a `bytes.translate` table


def kmer_vocabulary(k: int) -> dict[str, int]:
    """`[MASK]`=0, `[UNK]`=1, the 4^k k-mers in `itertools.product("ACGT", repeat=k)` order, then `[PAD]`."""
    kmers = ("".join(kmer) for kmer in itertools.product(NUCLEOTIDES, repeat=k))
    tokens = [*SPECIAL_TOKENS, *kmers, PAD_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def build_kmer_pipeline(k: int) -> Tokenizer:
    """The Rust pipeline: normalise the sequence, cut it into non-overlapping k-mers, look them up."""
    tokenizer = Tokenizer(WordLevel(kmer_vocabulary(k), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(r"[\s.\-]"), ""),  # whitespace/newlines of FASTA bodies, alignment gaps
            normalizers.Replace(Regex(f"[{AMBIGUITY_CODES}{AMBIGUITY_CODES.lower()}]"), "N"),
            normalizers.Replace(Regex("[Uut]"), "T"),
            *(normalizers.Replace(lower, lower.upper()) for lower in "acg"),
        ]
    )
    # Keep each complete k-mer as a token; a trailing partial k-mer is not matched and is removed.
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(f".{{{k}}}"), behavior="removed", invert=True)
    return tokenizer


def _without_leading_bases(sequence: str, count: int) -> str:
    """`sequence` minus its first `count` characters other than gaps and whitespace (and the gaps before them)."""
    if count == 0:
        return sequence
    kept = 0
    for position, character in enumerate(sequence):
        if character not in _GAPS_AND_WHITESPACE:
            kept += 1
            if kept == count:
                return sequence[position + 1 :]
    return ""


class BarcodeMAETokenizer(PreTrainedTokenizerFast):
    """Tokenizes DNA barcodes into non-overlapping k-mers (stride k), vocabulary compatible with BarcodeMAE/BarcodeBERT.

    Normalisation: whitespace and newlines removed, case folded, alignment gaps (`-`, `.`) removed, `U` read as
    `T`, IUPAC ambiguity codes read as `N`; a k-mer containing `N` is `[UNK]`; a trailing partial k-mer is dropped.
    No CLS/SEP tokens (BarcodeMAE pools by mean).

    The common call (str or list of str, padding and truncation on the right or none, tensors or lists) is computed
    in numpy, with the ids the Rust pipeline of `tokenizers` gives; every other call, and every batch holding a
    character other than ASCII nucleotide codes, gaps and whitespace, runs the Rust pipeline.

    Args:
        k_mer: k-mer length.
        max_sequence_length: nucleotides per sequence; `model_max_length` is `max_sequence_length // k_mer` tokens.
        strict: if True, a character that is not a nucleotide code, gap or whitespace (a digit, `X`, `>`, `*`, ...)
            raises a `ValueError` naming the sequence and the character; if False, the k-mers containing it are
            `[UNK]`. Sequences without a single complete k-mer always raise.
        register_frame: if True, each barcode is placed on the bundled COI-5P reference (`FrameLocator`) and its
            first 0..k-1 bases are dropped so that its k-mers start on the reference's frame: the same stretch of the
            gene gives the same tokens whatever base the barcode starts at. Barcodes that cannot be placed (not COI-5P,
            too short) are tokenized as they are. Nothing else changes: the content and order of the bases are
            kept, a trailing partial k-mer is dropped as always. `frame_registration()` reports the placement.
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self, k_mer: int = 6, max_sequence_length: int = 660, strict: bool = True, register_frame: bool = False, **kwargs
    ):
        # The pipeline is fully determined by k: it is rebuilt here, never read back from a vocab or tokenizer.json.
        for derived in ("tokenizer_object", "tokenizer_file", "vocab", "vocab_file", "merges"):
            kwargs.pop(derived, None)
        if k_mer < 1:
            raise ValueError(f"k_mer must be positive, got {k_mer}")
        self.k_mer = k_mer
        self.max_sequence_length = max_sequence_length
        self.strict = strict
        self.register_frame = register_frame
        self._frame_locator = None
        self._tokenizer = build_kmer_pipeline(k_mer)
        kwargs.setdefault("model_max_length", max_sequence_length // k_mer)
        kwargs.update(mask_token="[MASK]", unk_token="[UNK]", pad_token=PAD_TOKEN)
        for unused in ("bos_token", "eos_token", "cls_token", "sep_token"):
            kwargs.setdefault(unused, None)
        super().__init__(
            k_mer=k_mer, max_sequence_length=max_sequence_length, strict=strict, register_frame=register_frame, **kwargs
        )

    def frame_registration(self, sequences: str | list[str]) -> dict[str, np.ndarray]:
        """Where each barcode lies on the bundled COI-5P reference, whether or not `register_frame` is on.

        Returns arrays, one entry per sequence: `aligned` (placed on the reference), `reference_start` (the
        reference position of its first base, 0 = the Folmer region's first base; meaningful where aligned) and
        `dropped_bases` (what registration drops: `-reference_start mod k` where aligned, else 0).
        """
        sequences = [sequences] if isinstance(sequences, str) else list(sequences)
        return self._locate([self._base_codes(sequence) for sequence in sequences])

    @staticmethod
    def _base_codes(sequence: str) -> bytes:
        """A sequence as `_BYTE_CODES` codes, gaps and whitespace removed (a non-ASCII character codes as `_OTHER`)."""
        return sequence.translate(_REMOVED_CHARACTERS).encode("ascii", "replace").translate(_BYTE_CODES)

    def _locate(self, codes: list[bytes]) -> dict[str, np.ndarray]:
        if self._frame_locator is None:
            self._frame_locator = FrameLocator()
        start, aligned = self._frame_locator.locate(codes)
        lengths = np.fromiter(map(len, codes), np.int64, len(codes))
        dropped = np.where(aligned, -start % self.k_mer, 0)
        dropped[lengths - dropped < self.k_mer] = 0  # never drop the only complete k-mer
        return {"aligned": aligned, "reference_start": start, "dropped_bases": dropped}

    def _register(self, sequences: list[str]) -> list[str]:
        """The sequences minus the leading bases registration drops (counted without gaps and whitespace)."""
        dropped = self.frame_registration(sequences)["dropped_bases"]
        return [_without_leading_bases(sequence, int(count)) for sequence, count in zip(sequences, dropped)]

    def _encode_plus(self, text, text_pair=None, is_split_into_words=False, **kwargs):
        """Every call ends here: the numpy path where it applies, else the strict check, Rust pipeline, length check."""
        if text_pair is not None or is_split_into_words:
            raise ValueError("BarcodeMAETokenizer encodes single DNA sequences given as strings, not pairs or words")
        encoding = self._encode_in_numpy(text, **kwargs)
        if encoding is not None:
            return encoding
        sequences = [text] if isinstance(text, str) else list(text)
        if self.strict:
            self._check_characters(sequences)
        if self.register_frame:
            self._check_characters_are_str(sequences)
            sequences = self._register(sequences)
        encoding = super()._encode_plus(sequences[0] if isinstance(text, str) else sequences, **kwargs)
        self._check_not_empty([len(sequence.translate(_REMOVED_CHARACTERS)) for sequence in sequences])
        return encoding

    def _encode_in_numpy(
        self, text, padding_strategy, truncation_strategy, max_length, pad_to_multiple_of=None, padding_side=None,
        return_tensors=None, return_attention_mask=None, verbose=True, add_special_tokens=True, stride=0,
        split_special_tokens=None, **features,
    ) -> BatchEncoding | None:
        """The Rust pipeline's result for the common call, computed in numpy; None where the Rust pipeline must run.

        Taken for a str or a list/tuple of str whose characters are all ASCII nucleotides, ambiguity codes, gaps or
        whitespace, padded on the right (or not at all), truncated on the right (or not at all), without the
        features only the Rust pipeline has (`features`: offsets, overflowing tokens, special-tokens mask, lengths,
        token type ids). Anything else, including every input that raises a character error, goes to Rust.
        `add_special_tokens`, `stride` and `split_special_tokens` change nothing here: the pipeline adds no special
        tokens, a stride only acts on overflowing tokens, and a special token's text (`[MASK]`) goes to Rust.
        The result has no `encodings` (the Rust `Encoding` objects behind `tokens()`, `word_ids()`, ...).
        """
        sequences = [text] if isinstance(text, str) else text
        if (
            not isinstance(sequences, (list, tuple)) or not sequences or any(features.values())
            or (padding_side or self.padding_side) != "right" or self.truncation_side != "right"
            or truncation_strategy == TruncationStrategy.ONLY_SECOND
        ):
            return None
        try:
            joined = "\0".join(sequences).encode("ascii")
        except (TypeError, UnicodeEncodeError):  # not all str, or a non-ASCII character
            return None
        codes = joined.translate(_BYTE_CODES, _GAPS_AND_WHITESPACE.encode())
        parts = codes.split(bytes([_SEPARATOR]))
        if len(parts) != len(sequences) or bytes([_OTHER]) in codes:  # a NUL or another character Rust must read
            return None

        if self.register_frame:
            dropped = self._locate(parts)["dropped_bases"].tolist()
            parts = [part[count:] for part, count in zip(parts, dropped)]
        lengths = list(map(len, parts))  # nucleotides, without whitespace and gaps
        tokens = np.array(lengths) // self.k_mer
        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None:
            np.minimum(tokens, max_length, out=tokens)
        width = {
            PaddingStrategy.DO_NOT_PAD: 0, PaddingStrategy.LONGEST: tokens.max(), PaddingStrategy.MAX_LENGTH: max_length
        }[padding_strategy]
        if pad_to_multiple_of and padding_strategy != PaddingStrategy.DO_NOT_PAD:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        row_lengths = np.maximum(tokens, width)  # rows longer than a fixed max_length stay longer, as in Rust
        ragged = row_lengths.min() != row_lengths.max()
        if ragged and return_tensors is not None:
            return None  # Rust's path raises transformers' error about tensors of unequal lengths
        self._check_not_empty(lengths)

        # Each sequence's codes cut or padded (with A) to the longest row, then each k-mer read as a base-4 number:
        # itertools.product order, the order of `kmer_vocabulary`. Ambiguity codes make [UNK], padding [PAD].
        span = int(row_lengths.max()) * self.k_mer
        bases = np.frombuffer(b"".join([part[:span].ljust(span, b"\0") for part in parts]), np.uint8)
        kmers = bases.reshape(len(parts), -1, self.k_mer)
        ids = np.zeros(kmers.shape[:2], np.int64)
        for position in range(self.k_mer):
            ids <<= 2
            ids |= kmers[:, :, position]
        ids += len(SPECIAL_TOKENS)
        ids.reshape(-1)[np.flatnonzero(bases == _AMBIGUOUS) // self.k_mer] = self.unk_token_id
        attention_mask = np.arange(ids.shape[1]) < tokens[:, None]
        ids[~attention_mask] = self.pad_token_id
        self._eventual_warn_about_too_long_sequence(ids[0], max_length, verbose)  # the longest row's length

        encoded = {"input_ids": ids}
        if return_attention_mask or (return_attention_mask is None and "attention_mask" in self.model_input_names):
            encoded["attention_mask"] = attention_mask.astype(np.int64)
        if return_tensors is None:
            for key, array in encoded.items():
                rows = array.tolist()
                if ragged:
                    rows = [row[:length] for row, length in zip(rows, row_lengths.tolist())]
                encoded[key] = rows if isinstance(text, (list, tuple)) else rows[0]
        return BatchEncoding(encoded, tensor_type=return_tensors, n_sequences=1)

    @staticmethod
    def _check_characters_are_str(sequences: list) -> None:
        for index, sequence in enumerate(sequences):
            if not isinstance(sequence, str):
                raise TypeError(f"sequence {index} is a {type(sequence).__name__}, not a str")

    def _check_characters(self, sequences: list[str]) -> None:
        self._check_characters_are_str(sequences)
        for index, sequence in enumerate(sequences):
            invalid = find_invalid_character(sequence)
            if invalid is not None:
                position, character = invalid
                raise ValueError(
                    f"sequence {index} has the character {character!r} at position {position}, which is not a "
                    "nucleotide (ACGTU), IUPAC ambiguity code (RYSWKMBDHVN), gap (-.) or whitespace; "
                    "pass strict=False to read the k-mers that contain it as [UNK]"
                )

    def _check_not_empty(self, lengths: list[int]) -> None:
        """Raise for the first sequence with fewer than k nucleotides (`lengths`: without whitespace and gaps)."""
        for index, length in enumerate(lengths):
            if length < self.k_mer:
                raise ValueError(
                    f"sequence {index} has no complete {self.k_mer}-mer (length without whitespace and gaps: {length})"
                )


BarcodeMAETokenizer.register_for_auto_class("AutoTokenizer")
