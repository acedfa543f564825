"""BarcodeMAE tokenizer: non-overlapping k-mers of DNA, in the Rust pipeline of `tokenizers`."""

import itertools
import re

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

NUCLEOTIDES = "ACGT"
AMBIGUITY_CODES = "RYSWKMBDHVN"  # IUPAC; each is read as N, so a k-mer containing one is [UNK]
SPECIAL_TOKENS = ("[MASK]", "[UNK]")  # ids 0 and 1, before the k-mers, as in the original releases
PAD_TOKEN = "[PAD]"  # id 4**k + 2, after the k-mers

_ALLOWED = NUCLEOTIDES + "U" + AMBIGUITY_CODES
_INVALID_CHARACTER = re.compile(rf"[^{_ALLOWED}{_ALLOWED.lower()}\s.\-]")
_REMOVED_CHARACTERS = str.maketrans("", "", " \t\n\r\v\f.-")  # what the normaliser removes


def kmer_vocabulary(k: int) -> dict[str, int]:
    """`[MASK]`=0, `[UNK]`=1, the 4^k k-mers in `itertools.product("ACGT", repeat=k)` order, then `[PAD]`."""
    kmers = ("".join(kmer) for kmer in itertools.product(NUCLEOTIDES, repeat=k))
    tokens = [*SPECIAL_TOKENS, *kmers, PAD_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def find_invalid_character(sequence: str) -> tuple[int, str] | None:
    """(position, character) of the first character that is not a nucleotide code, gap or whitespace."""
    match = _INVALID_CHARACTER.search(sequence)
    return None if match is None else (match.start(), match.group())


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


class BarcodeMAETokenizer(PreTrainedTokenizerFast):
    """Tokenizes DNA barcodes into non-overlapping k-mers (stride k), vocabulary compatible with BarcodeMAE/BarcodeBERT.

    Normalisation: whitespace and newlines removed, case folded, alignment gaps (`-`, `.`) removed, `U` read as
    `T`, IUPAC ambiguity codes read as `N`; a k-mer containing `N` is `[UNK]`; a trailing partial k-mer is dropped.
    No CLS/SEP tokens (BarcodeMAE pools by mean).

    Args:
        k_mer: k-mer length.
        max_sequence_length: nucleotides per sequence; `model_max_length` is `max_sequence_length // k_mer` tokens.
        strict: if True, a character that is not a nucleotide code, gap or whitespace (a digit, `X`, `>`, `*`, ...)
            raises a `ValueError` naming the sequence and the character; if False, the k-mers containing it are
            `[UNK]`. Sequences without a single complete k-mer always raise.
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, k_mer: int = 6, max_sequence_length: int = 660, strict: bool = True, **kwargs):
        # The pipeline is fully determined by k: it is rebuilt here, never read back from a vocab or tokenizer.json.
        for derived in ("tokenizer_object", "tokenizer_file", "vocab", "vocab_file", "merges"):
            kwargs.pop(derived, None)
        if k_mer < 1:
            raise ValueError(f"k_mer must be positive, got {k_mer}")
        self.k_mer = k_mer
        self.max_sequence_length = max_sequence_length
        self.strict = strict
        self._tokenizer = build_kmer_pipeline(k_mer)
        kwargs.setdefault("model_max_length", max_sequence_length // k_mer)
        kwargs.update(mask_token="[MASK]", unk_token="[UNK]", pad_token=PAD_TOKEN)
        for unused in ("bos_token", "eos_token", "cls_token", "sep_token"):
            kwargs.setdefault(unused, None)
        super().__init__(k_mer=k_mer, max_sequence_length=max_sequence_length, strict=strict, **kwargs)

    def _encode_plus(self, text, text_pair=None, is_split_into_words=False, **kwargs):
        if text_pair is not None or is_split_into_words:
            raise ValueError("BarcodeMAETokenizer encodes single DNA sequences given as strings, not pairs or words")
        sequences = [text] if isinstance(text, str) else list(text)
        if self.strict:
            self._check_characters(sequences)
        encoding = super()._encode_plus(sequences if not isinstance(text, str) else text, **kwargs)
        self._check_not_empty(sequences)
        return encoding

    def _check_characters(self, sequences: list[str]) -> None:
        for index, sequence in enumerate(sequences):
            if not isinstance(sequence, str):
                raise TypeError(f"sequence {index} is a {type(sequence).__name__}, not a str")
            invalid = find_invalid_character(sequence)
            if invalid is not None:
                position, character = invalid
                raise ValueError(
                    f"sequence {index} has the character {character!r} at position {position}, which is not a "
                    "nucleotide (ACGTU), IUPAC ambiguity code (RYSWKMBDHVN), gap (-.) or whitespace; "
                    "pass strict=False to read the k-mers that contain it as [UNK]"
                )

    def _check_not_empty(self, sequences: list[str]) -> None:
        for index, sequence in enumerate(sequences):
            length = len(sequence.translate(_REMOVED_CHARACTERS))
            if length < self.k_mer:
                raise ValueError(
                    f"sequence {index} has no complete {self.k_mer}-mer (length without whitespace and gaps: {length})"
                )


BarcodeMAETokenizer.register_for_auto_class("AutoTokenizer")
