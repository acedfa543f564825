"""BarcodeMAE model configuration."""

from transformers import PretrainedConfig

try:
    from .alphabet_barcodemae import MAX_NUCLEOTIDES
except ImportError:
    from alphabet_barcodemae import MAX_NUCLEOTIDES

AUTO_MAP = {
    "AutoConfig": "configuration_barcodemae.BarcodeMAEConfig",
    "AutoModel": "modeling_barcodemae.BarcodeMAEModel",
    "AutoModelForPreTraining": "modeling_barcodemae.BarcodeMAEForPreTraining",
    "AutoModelForSequenceClassification": "modeling_barcodemae.BarcodeMAEForSequenceClassification",
}


class BarcodeMAEConfig(PretrainedConfig):
    r"""Configuration of a BarcodeMAE model: a masked autoencoder over non-overlapping k-mers of DNA barcodes.

    Defaults are the paper's model (arXiv 2502.18405): 6-mers, 660 nt (110 tokens), a 6-layer 768-wide
    encoder and a decoder of the same depth, 50% masking. Field names follow `ViTMAEConfig`.

    Args:
        k_mer: k-mer length; the vocabulary is `[MASK]`, `[UNK]`, the 4^k k-mers, `[PAD]`.
        max_sequence_length: nucleotides kept per barcode (longer ones are truncated).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder size.
        hidden_act: activation of the feed-forward blocks.
        hidden_dropout_prob, attention_probs_dropout_prob: dropout rates.
        max_position_embeddings: size of the learned absolute position table.
        type_vocab_size: rows of BERT's token type table (kept so BERT checkpoints load; every token has type 0).
        layer_norm_eps, initializer_range: as in BERT.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size:
            decoder size (used by `BarcodeMAEForPreTraining` only).
        mask_ratio: share of the real k-mer tokens of each sequence that is masked in pretraining.
        objective: `"mae"` (the encoder sees only visible tokens; BarcodeMAE) or `"mlm"` (the encoder sees
            `[MASK]` in place of masked tokens and a linear head predicts them; the BarcodeBERT-style baseline).
        pooling_layer: which hidden state `BarcodeMAEModel.pooler_output` averages, the frozen barcode embedding:
            -1 is the last layer, 0 the embedding output, i the output of layer i.
        classifier_pooling_layer: which hidden state `BarcodeMAEForSequenceClassification` averages, numbered as
            `pooling_layer`; -1 (the last layer) fine-tunes the whole encoder, whatever `pooling_layer` is.
        masked_loss_weight: weight w of the masked k-mers in the reconstruction loss; the visible k-mers are
            reconstructed too, with weight 1 - w. 1.0 (the paper's loss) scores masked k-mers only. The reference
            implementation's `--separate_loss --masked_loss_weight w` (bioscan-ml/BarcodeMAE, `pretraining.py`).
        hamming_soft_targets: reconstruct soft k-mer targets, softmax(-Hamming distance) over all 4^k k-mers,
            instead of one-hot ones: the reference's `--pretrain_levenshtein` (its `levenshtein.py`).
        contrastive_weight: weight of a contrastive term that is not in the paper (ours; off at 0.0): the pooled
            encoder features of two views of each barcode (two reading-frame offsets, each with its own masking) are
            pulled together against the other barcodes of the batch (symmetric InfoNCE through a projection head
            that is discarded with the decoder). Needs `second_view_input_ids` in pretraining.
        contrastive_temperature: temperature of that InfoNCE term.
        profile_loss_weight: weight of a masked-profile term that is not in the paper (ours; off at 0.0): from the
            pooled encoder features of the visible k-mers alone, a linear head predicts the overlapping k-mer
            frequencies of the whole barcode (every position, every reading frame; cross-entropy). A sequence-level
            masked-prediction target aimed at the pooled embedding that similarity search uses; the head is
            discarded with the decoder.
        identity_distillation_weight: weight of an identity-distillation term that is not in the paper (ours; off at
            0.0): over the barcodes of a batch, the softmax of the pooled encoder features' cosine similarities (at
            temperature `identity_embedding_temperature`) is pulled towards the softmax of the barcodes' alignment
            identities (at `identity_temperature`), KL(identity || cosine) per barcode: the frozen features learn to
            rank relatives as an alignment would. Label-free; needs `identity_targets` in pretraining (train.py
            computes them and fills each batch with k-mer neighbours, so that the batch holds relatives).
        identity_temperature: temperature of the identity targets (identities are in [0, 1]).
        distillation_teacher: where those targets come from: `"identity"` (alignment identity) or a non-learned
            encoder spec of the toolkit (e.g. `"kmer:6+aa:3"`: the cosine similarities of 6-mer and amino-acid 3-mer
            frequencies, which rank relatives of other species by their proteins). Read by train.py; recorded
            here so that a checkpoint says how it was trained.
        identity_embedding_temperature: temperature of the cosine similarities.
    """

    model_type = "barcodemae"

    def __init__(
        self,
        k_mer: int = 6,
        max_sequence_length: int = MAX_NUCLEOTIDES,
        hidden_size: int = 768,
        num_hidden_layers: int = 6,
        num_attention_heads: int = 6,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        decoder_hidden_size: int = 768,
        decoder_num_hidden_layers: int = 6,
        decoder_num_attention_heads: int = 6,
        decoder_intermediate_size: int = 3072,
        mask_ratio: float = 0.5,
        objective: str = "mae",
        pooling_layer: int = -1,
        classifier_pooling_layer: int = -1,
        masked_loss_weight: float = 1.0,
        hamming_soft_targets: bool = False,
        contrastive_weight: float = 0.0,
        contrastive_temperature: float = 0.1,
        profile_loss_weight: float = 0.0,
        identity_distillation_weight: float = 0.0,
        identity_temperature: float = 0.01,
        identity_embedding_temperature: float = 0.05,
        distillation_teacher: str = "identity",
        pad_token_id: int | None = None,
        **kwargs,
    ):
        if objective not in ("mae", "mlm"):
            raise ValueError(f"objective must be 'mae' or 'mlm', got {objective!r}")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if not 0.0 <= masked_loss_weight <= 1.0:
            raise ValueError(f"masked_loss_weight must be in [0, 1], got {masked_loss_weight}")
        if contrastive_weight < 0.0 or contrastive_temperature <= 0.0 or profile_loss_weight < 0.0:
            raise ValueError("contrastive_weight and profile_loss_weight must be >= 0, contrastive_temperature > 0")
        if identity_distillation_weight < 0.0 or min(identity_temperature, identity_embedding_temperature) <= 0.0:
            raise ValueError("identity_distillation_weight must be >= 0 and its temperatures > 0")
        if hidden_size % num_attention_heads or decoder_hidden_size % decoder_num_attention_heads:
            raise ValueError("hidden sizes must be divisible by their number of attention heads")
        if max_sequence_length // k_mer > max_position_embeddings:
            raise ValueError(
                f"{max_sequence_length // k_mer} tokens per sequence exceed max_position_embeddings={max_position_embeddings}"
            )
        for name, layer in (("pooling_layer", pooling_layer), ("classifier_pooling_layer", classifier_pooling_layer)):
            if not -1 <= layer <= num_hidden_layers:
                raise ValueError(f"{name} must be in [-1, {num_hidden_layers}], got {layer}")
        self.k_mer = k_mer
        self.max_sequence_length = max_sequence_length
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_num_hidden_layers = decoder_num_hidden_layers
        self.decoder_num_attention_heads = decoder_num_attention_heads
        self.decoder_intermediate_size = decoder_intermediate_size
        self.mask_ratio = mask_ratio
        self.objective = objective
        self.pooling_layer = pooling_layer
        self.classifier_pooling_layer = classifier_pooling_layer
        self.masked_loss_weight = masked_loss_weight
        self.hamming_soft_targets = hamming_soft_targets
        self.contrastive_weight = contrastive_weight
        self.contrastive_temperature = contrastive_temperature
        self.profile_loss_weight = profile_loss_weight
        self.identity_distillation_weight = identity_distillation_weight
        self.identity_temperature = identity_temperature
        self.identity_embedding_temperature = identity_embedding_temperature
        self.distillation_teacher = distillation_teacher
        # Vocabulary layout of the original BarcodeMAE / BarcodeBERT releases: [MASK]=0, [UNK]=1, k-mers, [PAD].
        self.mask_token_id = 0
        self.unk_token_id = 1
        self.vocab_size = 4**k_mer + 3
        # Every Auto class, whichever class saves the model (transformers records only the saving class by default).
        kwargs.setdefault("auto_map", dict(AUTO_MAP))
        super().__init__(pad_token_id=4**k_mer + 2 if pad_token_id is None else pad_token_id, **kwargs)

    @property
    def num_kmers(self) -> int:
        """Number of k-mer classes (the targets of the reconstruction loss)."""
        return 4**self.k_mer

    @property
    def max_tokens(self) -> int:
        """Tokens per sequence at `max_sequence_length`."""
        return self.max_sequence_length // self.k_mer
