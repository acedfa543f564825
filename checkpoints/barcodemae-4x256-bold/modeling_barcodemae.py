"""BarcodeMAE: a masked autoencoder for DNA barcodes (arXiv 2502.18405).

The encoder is a BERT encoder with BERT's parameter names, so the original BarcodeMAE / BarcodeBERT checkpoints
(transformers `BertModel` state dicts) map onto it one to one. In pretraining the encoder sees only the visible
k-mers (masked ones are dropped, not replaced) and a decoder of its own reconstructs the masked k-mers from the
encoder outputs plus a learned mask embedding. `objective="mlm"` gives the BarcodeBERT-style baseline instead: the
encoder sees `[MASK]` in place of the masked k-mers and a head on the encoder predicts them.

Attention runs through transformers' attention interface: `attn_implementation="sdpa"` (the default, faster for
inference) or `"eager"` (written out here; faster for training on CPUs, where it is what train.py picks).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

try:
    from .configuration_barcodemae import BarcodeMAEConfig
except ImportError:
    from configuration_barcodemae import BarcodeMAEConfig

FIRST_KMER_ID = 2  # ids 0 and 1 are [MASK] and [UNK]; k-mer class c has token id c + FIRST_KMER_ID
# Weights a pretraining checkpoint holds besides the encoder: the encoder-only classes ignore them quietly on load.
PRETRAINING_ONLY_KEYS = [r"^decoder", r"^mask_token", r"^head\.", r"^contrastive_head\.", r"^profile_head\."]


@dataclass
class BarcodeMAEForPreTrainingOutput(ModelOutput):
    """Output of `BarcodeMAEForPreTraining`.

    Args:
        loss: the training loss: `masked_loss` under the paper's recipe, plus the visible-token and contrastive terms
            when the config turns them on.
        logits: `(num_masked, 4**k)` k-mer class scores, one row per masked position, in `mask.nonzero()` order.
        labels: `(num_masked,)` true k-mer class of each row of `logits`.
        mask: `(batch, length)` True where a token was masked (the reconstruction targets).
        masked_loss: mean reconstruction cross-entropy over the masked k-mers (0 when nothing is masked).
        contrastive_loss: the InfoNCE term between two views (None when it is off or no second view was given).
        profile_loss: the masked-profile cross-entropy (None when it is off).
        identity_loss: the identity-distillation KL term (None when it is off or no `identity_targets` were given).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    masked_loss: torch.Tensor | None = None
    contrastive_loss: torch.Tensor | None = None
    profile_loss: torch.Tensor | None = None
    identity_loss: torch.Tensor | None = None


def masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where `attention_mask` is 1, in float32 (a row without any gives zeros)."""
    weights = attention_mask.float().unsqueeze(-1)
    return (hidden_states.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)


_HAMMING_TABLES: dict[tuple[int, str], torch.Tensor] = {}


def hamming_soft_targets(labels: torch.Tensor, k: int) -> torch.Tensor:
    """`(n, 4**k)` soft targets softmax(-Hamming distance to each k-mer), as the reference's `levenshtein.py` builds.

    The `(4**k, 4**k)` distance table is built once per k and device (uint8: 16 MiB for 6-mers).
    """
    key = (k, str(labels.device))
    if key not in _HAMMING_TABLES:
        codes = torch.arange(4**k, device=labels.device)
        digits = torch.stack([(codes // 4**i) % 4 for i in range(k)], dim=-1)  # base-4 digits of every k-mer
        _HAMMING_TABLES[key] = (digits[:, None, :] != digits[None, :, :]).sum(-1).to(torch.uint8)
    return torch.softmax(-_HAMMING_TABLES[key][labels].float(), dim=-1)


def overlapping_kmer_profile(input_ids: torch.Tensor, k: int) -> torch.Tensor:
    """`(batch, 4**k)` frequencies of the overlapping k-mers of each row, read back from its non-overlapping k-mer
    tokens (every reading frame); windows that touch `[UNK]`, padding or a special token are skipped."""
    classes = input_ids - FIRST_KMER_ID
    valid = (classes >= 0) & (classes < 4**k)
    place = 4 ** torch.arange(k - 1, -1, -1, device=input_ids.device)  # product("ACGT") order: first base highest
    bases = (classes.clamp(0, 4**k - 1).unsqueeze(-1) // place % 4).flatten(1)  # (batch, length * k) nucleotides
    windows_valid = valid.repeat_interleave(k, dim=1).unfold(1, k, 1).all(-1)
    codes = (bases.unfold(1, k, 1) * place).sum(-1)
    counts = torch.zeros(len(input_ids), 4**k, device=input_ids.device).scatter_add_(1, codes, windows_valid.float())
    return counts / counts.sum(1, keepdim=True).clamp(min=1.0)


def info_nce(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of `first` and of `second` are positives, every other row of the batch a negative."""
    first, second = F.normalize(first.float(), dim=-1), F.normalize(second.float(), dim=-1)
    logits = first @ second.T / temperature
    targets = torch.arange(len(first), device=first.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def identity_distillation(
    embeddings: torch.Tensor, identity: torch.Tensor, identity_temperature: float, embedding_temperature: float
) -> torch.Tensor:
    """Mean over the rows of KL(softmax(identity / t_i) || softmax(cosine / t_e)), each row over the other barcodes."""
    embeddings = F.normalize(embeddings.float(), dim=-1)
    others = ~torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    targets = F.softmax((identity.float() / identity_temperature).masked_fill(~others, -1e4), dim=-1)
    log_scores = F.log_softmax((embeddings @ embeddings.T / embedding_temperature).masked_fill(~others, -1e4), dim=-1)
    return F.kl_div(log_scores, targets, reduction="batchmean")


def fast_dropout(hidden_states: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout (`F.dropout`) with a faster keep mask on CPU.

    torch's CPU dropout draws one Mersenne Twister number per element on one thread (benchmarks/bench_cpu_kernels.py
    times both). Here each 64-bit draw gives four 16-bit uniform integers, so the drop probability is rounded to a
    multiple of 1/65536 (0.1 becomes 0.1000061). Other devices use `F.dropout`.
    """
    if not training or p == 0.0:
        return hidden_states
    if hidden_states.device.type != "cpu" or p == 1.0:
        return F.dropout(hidden_states, p, training=True)
    words = torch.empty((hidden_states.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    uniform16 = words.view(torch.int16)[: hidden_states.numel()].view(hidden_states.shape)
    keep = uniform16 >= round(p * 65536) - 32768
    return hidden_states * keep.to(hidden_states.dtype).mul_(1.0 / (1.0 - p))


class BarcodeMAEDropout(nn.Dropout):
    """`nn.Dropout` with the faster CPU mask of `fast_dropout`."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return fast_dropout(hidden_states, self.p, self.training)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out, as in BERT; `attention_mask` is boolean, True = attend."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, float("-inf"))
    weights = fast_dropout(scores.softmax(-1), dropout, module.training)
    return torch.matmul(weights, value).transpose(1, 2), weights


class BarcodeMAEEmbeddings(nn.Module):
    """Token + learned absolute position (+ BERT's constant token type) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BarcodeMAEConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        # Kept so BertModel checkpoints load 1:1; every token has type 0.
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = BarcodeMAEDropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        embeddings = (
            self.word_embeddings(input_ids) + self.position_embeddings(position_ids) + self.token_type_embeddings.weight[0]
        )
        return self.dropout(self.LayerNorm(embeddings))


class BarcodeMAESelfAttention(nn.Module):
    def __init__(self, config: BarcodeMAEConfig, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob
        self.scaling = (hidden_size // num_heads) ** -0.5
        self.is_causal = False  # read by transformers' attention functions
        self.config = config  # its `_attn_implementation` picks the attention function at each call

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        # The three projections as one matmul (the parameters stay BERT's `query`, `key`, `value`): a larger GEMM
        # and, under autocast, one cast of the input instead of three.
        if isinstance(self.query, nn.Linear):
            weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            projected = F.linear(hidden_states, weight, bias)
        else:  # projections replaced by other modules, e.g. `torch.ao.quantization.quantize_dynamic`'s int8 ones
            projected = torch.cat([self.query(hidden_states), self.key(hidden_states), self.value(hidden_states)], -1)
        projected = projected.view(batch, length, 3, self.num_heads, width // self.num_heads)
        query, key, value = projected.permute(2, 0, 3, 1, 4).unbind(0)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        dropout = self.dropout_prob if self.training else 0.0
        context, _ = attention(self, query, key, value, attention_mask, scaling=self.scaling, dropout=dropout)
        return context.reshape(batch, length, width)


class BarcodeMAEResidualOutput(nn.Module):
    """Linear projection back to the hidden size, dropout, residual, LayerNorm (BERT's `SelfOutput` and `Output`)."""

    def __init__(self, config: BarcodeMAEConfig, input_size: int, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(input_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.dropout = BarcodeMAEDropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class BarcodeMAEAttention(nn.Module):
    def __init__(self, config: BarcodeMAEConfig, hidden_size: int, num_heads: int):
        super().__init__()
        self.self = BarcodeMAESelfAttention(config, hidden_size, num_heads)
        self.output = BarcodeMAEResidualOutput(config, hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(hidden_states, attention_mask), hidden_states)


class BarcodeMAEIntermediate(nn.Module):
    def __init__(self, config: BarcodeMAEConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states))


class BarcodeMAELayer(nn.Module):
    """A post-LayerNorm BERT block."""

    def __init__(self, config: BarcodeMAEConfig, hidden_size: int, num_heads: int, intermediate_size: int):
        super().__init__()
        self.attention = BarcodeMAEAttention(config, hidden_size, num_heads)
        self.intermediate = BarcodeMAEIntermediate(config, hidden_size, intermediate_size)
        self.output = BarcodeMAEResidualOutput(config, intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        attended = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(attended), attended)


class BarcodeMAEStack(nn.Module):
    """A stack of BERT blocks (`layer.N`), used for both the encoder and the decoder."""

    def __init__(
        self, config: BarcodeMAEConfig, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int
    ):
        super().__init__()
        self.layer = nn.ModuleList(
            BarcodeMAELayer(config, hidden_size, num_heads, intermediate_size) for _ in range(num_layers)
        )
        self.gradient_checkpointing = False

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, num_layers: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Returns the input and the output of every layer (of the first `num_layers` only, when given);
        `attention_mask` is `(batch, length)`, 1 = attend."""
        sdpa_mask = None
        if not bool(attention_mask.all()):
            sdpa_mask = attention_mask.bool()
            # A row with nothing to attend to (all padding) attends everywhere instead of producing NaN.
            sdpa_mask = (sdpa_mask | ~sdpa_mask.any(-1, keepdim=True))[:, None, None, :]
        all_hidden_states = [hidden_states]
        for layer in self.layer[:num_layers]:
            if self.gradient_checkpointing and self.training:
                hidden_states = self._gradient_checkpointing_func(layer.__call__, hidden_states, sdpa_mask)
            else:
                hidden_states = layer(hidden_states, sdpa_mask)
            all_hidden_states.append(hidden_states)
        return tuple(all_hidden_states)


class BarcodeMAEPredictionHead(nn.Module):
    """BERT's LM head transform (dense, activation, LayerNorm) followed by a linear layer over the 4^k k-mers."""

    def __init__(self, config: BarcodeMAEConfig, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, config.num_kmers)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden_states))))


class BarcodeMAEPreTrainedModel(PreTrainedModel):
    config_class = BarcodeMAEConfig
    base_model_prefix = "barcodemae"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # The loss is a mean over masked tokens / examples: Trainer must not rescale it under gradient accumulation.
    accepts_loss_kwargs = False
    _no_split_modules = ["BarcodeMAELayer"]

    def _attention_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """`attention_mask`, by default 1 wherever `input_ids` is not padding."""
        return (input_ids != self.config.pad_token_id).long() if attention_mask is None else attention_mask

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, BarcodeMAEForPreTraining) and module.mask_token is not None:
            nn.init.normal_(module.mask_token, mean=0.0, std=std)


class BarcodeMAEModel(BarcodeMAEPreTrainedModel):
    """The BarcodeMAE encoder, for feature extraction.

    `pooler_output` is the mean of the hidden state chosen by `config.pooling_layer` (default: the last layer) over
    the k-mer tokens, padding excluded: the barcode embedding used by every probe.
    """

    _keys_to_ignore_on_load_unexpected = PRETRAINING_ONLY_KEYS

    def __init__(self, config: BarcodeMAEConfig):
        super().__init__(config)
        self.embeddings = BarcodeMAEEmbeddings(config)
        self.encoder = BarcodeMAEStack(
            config, config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        up_to_layer: int | None = None,
        pooling_layer: int | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """`position_ids` default to 0..length-1; pretraining passes the original positions of the visible tokens.

        `up_to_layer` (opt-in, for feature extraction): compute hidden states 0..up_to_layer only (0 = the embedding
        output, -1 = all); `last_hidden_state` is then hidden state `up_to_layer`, and `pooler_output` is None when
        the pooled layer lies beyond it. `up_to_layer=config.pooling_layer` gives the same `pooler_output` for the
        cost of the layers it needs. `pooling_layer`: the hidden state to pool, numbered the same way (default
        `config.pooling_layer`).
        """
        attention_mask = self._attention_mask(input_ids, attention_mask)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        depth = self.config.num_hidden_layers
        pooling_layer = self.config.pooling_layer if pooling_layer is None else pooling_layer
        for name, layer in (("up_to_layer", up_to_layer), ("pooling_layer", pooling_layer)):
            if layer is not None and not -1 <= layer <= depth:
                raise ValueError(f"{name} must be in [-1, {depth}], got {layer}")
        computed = depth if up_to_layer in (None, -1) else up_to_layer
        hidden_states = self.encoder(self.embeddings(input_ids, position_ids), attention_mask, num_layers=computed)
        pooling_layer %= depth + 1
        pooler_output = masked_mean(hidden_states[pooling_layer], attention_mask) if pooling_layer <= computed else None
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output = BaseModelOutputWithPooling(
            last_hidden_state=hidden_states[-1],
            pooler_output=pooler_output,
            hidden_states=hidden_states if output_hidden_states else None,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


class BarcodeMAEForPreTraining(BarcodeMAEPreTrainedModel):
    """Masked pretraining: BarcodeMAE (`config.objective="mae"`) or the BarcodeBERT-style MLM baseline ("mlm").

    Per sequence, `round_down((1 - mask_ratio) * n)` of its n maskable tokens stay visible and the others are masked
    (as in ViTMAE), where the maskable tokens are the real k-mers: padding is never visible nor a target, and `[UNK]` k-mers (which hold an ambiguous base) are never
    targets and always stay visible, so they do not count toward the mask ratio.
    """

    def __init__(self, config: BarcodeMAEConfig):
        super().__init__(config)
        self.barcodemae = BarcodeMAEModel(config)
        if config.objective == "mae":
            self.decoder_embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
            self.decoder_position_embeddings = nn.Embedding(config.max_position_embeddings, config.decoder_hidden_size)
            self.decoder = BarcodeMAEStack(
                config,
                config.decoder_hidden_size,
                config.decoder_num_hidden_layers,
                config.decoder_num_attention_heads,
                config.decoder_intermediate_size,
            )
            self.head = BarcodeMAEPredictionHead(config, config.decoder_hidden_size)
        else:
            self.mask_token = None
            self.head = BarcodeMAEPredictionHead(config, config.hidden_size)
        if config.contrastive_weight > 0:  # SimCLR-style projection head, discarded with the decoder
            self.contrastive_head = nn.Sequential(
                nn.Linear(config.hidden_size, config.hidden_size), nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size)
            )
        if config.profile_loss_weight > 0:
            self.profile_head = nn.Linear(config.hidden_size, config.num_kmers)
        self.post_init()

    def random_masking(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose the tokens to keep: the lowest-noise ones of each row.

        Returns `keep` and `mask`, both `(batch, length)` bool: the visible tokens and the masked (target) tokens.
        `noise` (`(batch, length)`, any real values) makes the choice reproducible; by default it is uniform.
        """
        real = attention_mask.bool()
        unknown = real & (input_ids == self.config.unk_token_id)
        if noise is None:
            noise = torch.rand(input_ids.shape, device=input_ids.device)
        # Padding sorts last whatever the noise; [UNK] sorts first (always kept, never a target).
        noise = noise.float().masked_fill(~real, float("inf")).masked_fill(unknown, float("-inf"))
        rank = noise.argsort(dim=1).argsort(dim=1)
        num_maskable = (real & ~unknown).sum(1)
        num_keep = unknown.sum(1) + torch.floor(num_maskable * (1.0 - self.config.mask_ratio)).long()
        keep = rank < num_keep.unsqueeze(1)
        return keep, real & ~keep

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        second_view_input_ids: torch.Tensor | None = None,
        second_view_attention_mask: torch.Tensor | None = None,
        identity_targets: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BarcodeMAEForPreTrainingOutput | tuple:
        """`second_view_*`: the same barcodes tokenized from another start offset (for `config.contrastive_weight`).
        `identity_targets`: `(batch, batch)` alignment identities between the barcodes (for
        `config.identity_distillation_weight`)."""
        attention_mask = self._attention_mask(input_ids, attention_mask)
        keep, mask = self.random_masking(input_ids, attention_mask, noise)
        encoded, hidden_states = self._encode_and_reconstruct(input_ids, attention_mask, keep, mask)
        logits = self.head(hidden_states[mask])  # the masked positions are always scored
        labels = input_ids[mask] - FIRST_KMER_ID
        masked_loss = loss = self._reconstruction_loss(logits, labels)
        weight = self.config.masked_loss_weight
        if weight < 1.0:  # the visible k-mers too, as the reference's --separate_loss
            visible = keep & attention_mask.bool() & (input_ids != self.config.unk_token_id)
            visible_loss = self._reconstruction_loss(self.head(hidden_states[visible]), input_ids[visible] - FIRST_KMER_ID)
            loss = weight * masked_loss + (1.0 - weight) * visible_loss
        contrastive_loss = None
        if self.config.contrastive_weight > 0 and second_view_input_ids is not None:
            second = self._pooled_view(second_view_input_ids, second_view_attention_mask)
            contrastive_loss = info_nce(
                self.contrastive_head(encoded.pooler_output), self.contrastive_head(second),
                self.config.contrastive_temperature,
            )  # fmt: skip
            loss = loss + self.config.contrastive_weight * contrastive_loss
        profile_loss = None
        if self.config.profile_loss_weight > 0:
            profile = overlapping_kmer_profile(input_ids, self.config.k_mer)
            rows = profile.sum(1) > 0
            log_probabilities = F.log_softmax(self.profile_head(encoded.pooler_output[rows]).float(), dim=-1)
            profile_loss = -(profile[rows] * log_probabilities).sum(-1).mean() if rows.any() else logits.sum() * 0.0
            loss = loss + self.config.profile_loss_weight * profile_loss
        identity_loss = None
        if self.config.identity_distillation_weight > 0 and identity_targets is not None:
            identity_loss = identity_distillation(
                encoded.pooler_output, identity_targets, self.config.identity_temperature,
                self.config.identity_embedding_temperature,
            )  # fmt: skip
            loss = loss + self.config.identity_distillation_weight * identity_loss
        output = BarcodeMAEForPreTrainingOutput(
            loss=loss, logits=logits, labels=labels, mask=mask, masked_loss=masked_loss,
            contrastive_loss=contrastive_loss, profile_loss=profile_loss, identity_loss=identity_loss,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def _encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor, mask: torch.Tensor
    ) -> tuple[BaseModelOutputWithPooling, torch.Tensor | None]:
        """The encoder on this masking: the visible tokens only (mae; also returns their positions, for the decoder)
        or `[MASK]` in place of the masked ones (mlm; no positions)."""
        if self.config.objective == "mae":
            return self._encode_visible(input_ids, keep)
        masked = input_ids.masked_fill(mask, self.config.mask_token_id)
        return self.barcodemae(masked, attention_mask=attention_mask, return_dict=True), None

    def _encode_and_reconstruct(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor, mask: torch.Tensor
    ) -> tuple[BaseModelOutputWithPooling, torch.Tensor]:
        """The encoder's output on this masking and the hidden states the head scores, at every position."""
        encoded, order = self._encode(input_ids, attention_mask, keep, mask)
        if order is None:
            return encoded, encoded.last_hidden_state
        return encoded, self._decode(encoded.last_hidden_state, order, keep, attention_mask)

    def _pooled_view(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled encoder features of a view with its own random masking (as the encoder sees it in pretraining)."""
        attention_mask = self._attention_mask(input_ids, attention_mask)
        keep, mask = self.random_masking(input_ids, attention_mask)
        return self._encode(input_ids, attention_mask, keep, mask)[0].pooler_output

    def _reconstruction_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy against the k-mer classes, or their Hamming soft targets; 0 for no rows."""
        if not labels.numel():
            return logits.sum() * 0.0
        targets = hamming_soft_targets(labels, self.config.k_mer) if self.config.hamming_soft_targets else labels
        return F.cross_entropy(logits.float(), targets)

    def _encode_visible(
        self, input_ids: torch.Tensor, keep: torch.Tensor
    ) -> tuple[BaseModelOutputWithPooling, torch.Tensor]:
        """Run the encoder on the kept tokens only, packed to the left in their original order, at their positions.

        Rows that keep fewer tokens than the longest are filled with padding (token, attention mask 0), never with
        masked tokens. Returns the encoder output (`last_hidden_state` `(batch, visible, hidden)`, `pooler_output`
        over the visible tokens) and the position of each visible slot.
        """
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device).expand_as(input_ids)
        num_visible = max(int(keep.sum(1).max()), 1)  # an all-padding batch still gets one (padding) slot
        # Kept positions first, in order, then the others: a permutation of 0..length-1 per row.
        order = torch.where(keep, positions, positions + length).argsort(dim=1)[:, :num_visible]
        visible = torch.arange(num_visible, device=input_ids.device) < keep.sum(1, keepdim=True)
        encoded = self.barcodemae(
            input_ids.gather(1, order).masked_fill(~visible, self.config.pad_token_id),
            attention_mask=visible.long(),
            position_ids=order.masked_fill(~visible, 0),
            return_dict=True,
        )
        return encoded, order

    def _decode(
        self, visible_states: torch.Tensor, order: torch.Tensor, keep: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Decoder over all positions: encoder outputs at the kept ones, the mask embedding elsewhere."""
        visible_states = self.decoder_embed(visible_states)
        batch, length = keep.shape
        # Each row of `order` holds distinct positions, so the scatter writes each position at most once; slots that
        # are padding land on non-kept positions and are replaced by the mask embedding just below.
        index = order.unsqueeze(-1).expand(-1, -1, visible_states.shape[-1])
        scattered = visible_states.new_zeros(batch, length, visible_states.shape[-1]).scatter(1, index, visible_states)
        hidden_states = torch.where(keep.unsqueeze(-1), scattered, self.mask_token.to(scattered.dtype))
        positions = torch.arange(length, device=keep.device)
        hidden_states = hidden_states + self.decoder_position_embeddings(positions)
        return self.decoder(hidden_states, attention_mask)[-1]


class BarcodeMAEForSequenceClassification(BarcodeMAEPreTrainedModel):
    """Mean of hidden state `config.classifier_pooling_layer` (default the last: every layer is fine-tuned) →
    dropout → linear; `labels` and `problem_type` handled as in transformers. `config.pooling_layer`, the frozen
    embedding's layer, plays no part."""

    _keys_to_ignore_on_load_unexpected = PRETRAINING_ONLY_KEYS

    def __init__(self, config: BarcodeMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.barcodemae = BarcodeMAEModel(config)
        self.dropout = BarcodeMAEDropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        encoded = self.barcodemae(input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
                                  pooling_layer=self.config.classifier_pooling_layer, return_dict=True)  # fmt: skip
        logits = self.classifier(self.dropout(encoded.pooler_output))
        loss = None if labels is None else self._loss(logits, labels)
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=encoded.hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1))
        if self.config.problem_type == "single_label_classification":
            return F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


BarcodeMAEConfig.register_for_auto_class()
BarcodeMAEModel.register_for_auto_class("AutoModel")
BarcodeMAEForPreTraining.register_for_auto_class("AutoModelForPreTraining")
BarcodeMAEForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
