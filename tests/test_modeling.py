import pytest
import torch
from conftest import tiny_config_kwargs
from transformers import BertConfig, BertModel

from configuration_barcodemae import BarcodeMAEConfig
from modeling_barcodemae import (
    BarcodeMAEForPreTraining,
    BarcodeMAEForSequenceClassification,
    BarcodeMAEModel,
    fast_dropout,
)
from tokenization_barcodemae import BarcodeMAETokenizer

PAD = 4**6 + 2


@pytest.fixture(scope="module")
def batch(barcodes):
    """Real barcodes of different lengths, one with an [UNK] k-mer, and one all-padding row."""
    tokenizer = BarcodeMAETokenizer()
    sequences = [barcodes[0][:300], barcodes[1], "ACGTAN" + barcodes[2][6:400], barcodes[3][:61]]
    encoded = tokenizer(sequences, padding=True, truncation=True, return_tensors="pt")
    input_ids = torch.cat([encoded["input_ids"], torch.full((1, encoded["input_ids"].shape[1]), PAD)])
    attention_mask = torch.cat([encoded["attention_mask"], torch.zeros(1, input_ids.shape[1], dtype=torch.long)])
    return input_ids, attention_mask


def make_model(objective="mae", **overrides):
    torch.manual_seed(0)
    return BarcodeMAEForPreTraining(BarcodeMAEConfig(objective=objective, **tiny_config_kwargs(**overrides))).eval()


def test_config_defaults_are_the_paper_model():
    config = BarcodeMAEConfig()
    assert (config.k_mer, config.max_tokens, config.mask_ratio) == (6, 110, 0.5)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) == (
        768, 6, 6, 3072)
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers, config.decoder_num_attention_heads) == (
        768, 6, 6)
    assert config.model_type == "barcodemae" and config.vocab_size == 4**6 + 3 and config.pad_token_id == PAD
    with pytest.raises(ValueError, match="objective"):
        BarcodeMAEConfig(objective="clm")


@pytest.mark.parametrize("noise_kind", ["uniform", "randn_large"])
def test_masking_invariants(batch, noise_kind):
    input_ids, attention_mask = batch
    model = make_model()
    generator = torch.Generator().manual_seed(1)
    noise = torch.rand(input_ids.shape, generator=generator)
    if noise_kind == "randn_large":  # noise far above any constant a padding fill could use
        noise = torch.randn(input_ids.shape, generator=generator) * 1e6
    keep, mask = model.random_masking(input_ids, attention_mask, noise)
    real = attention_mask.bool()
    unknown = input_ids == 1
    assert unknown.any(), "the batch must contain an [UNK] k-mer"
    assert not (keep & ~real).any() and not (mask & ~real).any()  # padding never visible nor a target
    assert not (mask & unknown).any() and (keep | ~unknown | ~real).all()  # [UNK] always visible, never a target
    assert torch.equal(keep | mask, real)
    maskable = (real & ~unknown).sum(1)
    assert torch.equal(mask.sum(1), maskable - torch.floor(maskable * 0.5).long())
    assert keep[-1].sum() == 0 and mask[-1].sum() == 0  # the all-padding row


def test_encoder_sees_only_visible_tokens_at_their_positions(batch):
    input_ids, attention_mask = batch
    model = make_model()
    noise = torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(2))
    keep, _ = model.random_masking(input_ids, attention_mask, noise)
    seen = {}

    def record(module, args, kwargs):
        seen.update(kwargs, input_ids=args[0])

    handle = model.barcodemae.register_forward_pre_hook(record, with_kwargs=True)
    model(input_ids, attention_mask=attention_mask, noise=noise)
    handle.remove()
    visible_counts = keep.sum(1)
    assert seen["input_ids"].shape[1] == int(visible_counts.max())  # encoder length = visible count
    for row in range(input_ids.shape[0]):
        count = int(visible_counts[row])
        positions = keep[row].nonzero().squeeze(1)
        assert torch.equal(seen["position_ids"][row, :count], positions)
        assert torch.equal(seen["input_ids"][row, :count], input_ids[row, positions])
        # Slots beyond a shorter row's visible count are padding, never masked tokens.
        assert torch.all(seen["input_ids"][row, count:] == PAD)
        assert torch.equal(seen["attention_mask"][row], (torch.arange(seen["input_ids"].shape[1]) < count).long())


def test_loss_only_on_masked_positions(batch):
    input_ids, attention_mask = batch
    model = make_model()
    noise = torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(3))
    output = model(input_ids, attention_mask=attention_mask, noise=noise)
    assert output.logits.shape == (int(output.mask.sum()), 4**6)
    assert torch.equal(output.labels, input_ids[output.mask] - 2)
    expected = torch.nn.functional.cross_entropy(output.logits, output.labels)
    torch.testing.assert_close(output.loss, expected)
    # Changing a masked token changes the targets but not what the encoder/decoder see: logits are unchanged.
    changed = input_ids.clone()
    row, column = output.mask.nonzero()[0]
    changed[row, column] = 2 + (int(changed[row, column]) - 2 + 1) % 4**6
    again = model(changed, attention_mask=attention_mask, noise=noise)
    torch.testing.assert_close(again.logits, output.logits)
    assert not torch.equal(again.labels, output.labels)


def test_all_padding_batch_has_zero_loss_and_gradients_flow(batch):
    input_ids, attention_mask = batch
    model = make_model().train()
    output = model(input_ids[-1:], attention_mask=attention_mask[-1:])
    assert output.loss.item() == 0.0 and output.logits.shape[0] == 0
    output = model(input_ids, attention_mask=attention_mask)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert model.mask_token.grad is not None and model.barcodemae.embeddings.word_embeddings.weight.grad is not None


def test_mae_and_mlm_differ_where_they_must(batch):
    input_ids, attention_mask = batch
    noise = torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(4))
    mae, mlm = make_model("mae"), make_model("mlm")
    assert hasattr(mae, "decoder") and not hasattr(mlm, "decoder")
    seen = {}
    mlm.barcodemae.register_forward_pre_hook(lambda module, args, kwargs: seen.update(kwargs, input_ids=args[0]),
                                             with_kwargs=True)
    mae_out, mlm_out = mae(input_ids, attention_mask, noise), mlm(input_ids, attention_mask, noise)
    assert torch.equal(mae_out.mask, mlm_out.mask)  # same masking policy
    # MLM: the encoder sees every position, [MASK] (id 0) in place of the masked tokens.
    assert seen["input_ids"].shape == input_ids.shape
    assert torch.all(seen["input_ids"][mlm_out.mask] == 0)
    assert torch.equal(seen["input_ids"][~mlm_out.mask], input_ids[~mlm_out.mask])


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_golden_against_transformers_bert(batch, attn_implementation):
    """BERT weights copied into BarcodeMAEModel give BERT's hidden states: original checkpoints map 1:1."""
    input_ids, attention_mask = batch
    input_ids, attention_mask = input_ids[:-1], attention_mask[:-1]  # BERT itself is undefined on all-padding rows
    config = BarcodeMAEConfig(**tiny_config_kwargs())
    bert_config = BertConfig(
        vocab_size=config.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=config.max_position_embeddings, pad_token_id=PAD,
    )
    torch.manual_seed(5)
    bert = BertModel(bert_config, add_pooling_layer=False).eval()
    ours = BarcodeMAEModel(config).eval()
    ours.set_attn_implementation(attn_implementation)
    missing, unexpected = ours.load_state_dict(bert.state_dict(), strict=False)
    assert not missing and set(unexpected) <= {"embeddings.position_ids"}
    expected = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    output = ours(input_ids=input_ids, attention_mask=attention_mask)
    real = attention_mask.bool()
    torch.testing.assert_close(output.last_hidden_state[real], expected[real], atol=1e-5, rtol=1e-5)
    pooled = (expected * attention_mask[..., None]).sum(1) / attention_mask.sum(1, keepdim=True)
    torch.testing.assert_close(output.pooler_output, pooled, atol=1e-5, rtol=1e-5)


def test_pooling_excludes_padding_and_pooling_layer_option(batch):
    input_ids, attention_mask = batch
    model = BarcodeMAEModel(BarcodeMAEConfig(**tiny_config_kwargs())).eval()
    output = model(input_ids[:1], attention_mask=attention_mask[:1], output_hidden_states=True)
    length = int(attention_mask[0].sum())
    # Appending padding changes nothing.
    padded = torch.cat([input_ids[:1], torch.full((1, 20), PAD)], 1)
    padded_output = model(padded, attention_mask=(padded != PAD).long())
    torch.testing.assert_close(padded_output.pooler_output, output.pooler_output, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state[0, :length].mean(0, keepdim=True))
    assert len(output.hidden_states) == 3
    model.config.pooling_layer = 0
    first = model(input_ids[:1], attention_mask=attention_mask[:1]).pooler_output
    torch.testing.assert_close(first, output.hidden_states[0][0, :length].mean(0, keepdim=True))


def test_up_to_layer_stops_early_with_the_same_pooled_output(batch):
    input_ids, attention_mask = batch
    model = BarcodeMAEModel(BarcodeMAEConfig(pooling_layer=1, **tiny_config_kwargs())).eval()
    full = model(input_ids, attention_mask=attention_mask, output_hidden_states=True)
    assert len(full.hidden_states) == 3 and full.last_hidden_state is full.hidden_states[-1]  # default: every layer
    early = model(input_ids, attention_mask=attention_mask, output_hidden_states=True, up_to_layer=1)
    assert len(early.hidden_states) == 2
    torch.testing.assert_close(early.last_hidden_state, full.hidden_states[1])
    torch.testing.assert_close(early.pooler_output, full.pooler_output)
    assert model(input_ids, attention_mask=attention_mask, up_to_layer=0).pooler_output is None  # layer 1 not run
    torch.testing.assert_close(model(input_ids, up_to_layer=-1).last_hidden_state, model(input_ids).last_hidden_state)
    with pytest.raises(ValueError, match="up_to_layer"):
        model(input_ids, up_to_layer=3)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_gradient_checkpointing_gives_same_gradients(batch, attn_implementation):
    """With dropout on: the recomputation replays the same dropout masks (the RNG state is restored)."""
    input_ids, attention_mask = batch
    config = BarcodeMAEConfig(**tiny_config_kwargs())
    assert config.hidden_dropout_prob > 0 and config.attention_probs_dropout_prob > 0
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = BarcodeMAEForPreTraining(config).train()
        model.set_attn_implementation(attn_implementation)
        if checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # its name in recent transformers 5.x
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:  # older 5.x (5.17 on the GPU image)
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert model.barcodemae.encoder.gradient_checkpointing and model.decoder.gradient_checkpointing
        noise = torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(6))
        model(input_ids, attention_mask, noise).loss.backward()
        grads.append(model.barcodemae.embeddings.word_embeddings.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_sequence_classification_problem_types(batch):
    input_ids, attention_mask = batch
    input_ids, attention_mask = input_ids[:-1], attention_mask[:-1]
    for num_labels, labels, problem in [
        (3, torch.tensor([0, 2, 1, 1]), "single_label_classification"),
        (1, torch.tensor([0.5, 1.0, 2.0, 0.0]), "regression"),
        (2, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]), "multi_label_classification"),
    ]:
        model = BarcodeMAEForSequenceClassification(BarcodeMAEConfig(num_labels=num_labels, **tiny_config_kwargs()))
        output = model(input_ids, attention_mask=attention_mask, labels=labels)
        assert model.config.problem_type == problem
        assert output.logits.shape == (4, num_labels) and torch.isfinite(output.loss)


def test_classification_fine_tunes_every_layer_whatever_the_frozen_pooling_layer(batch):
    """A checkpoint that pools layer 0 for its frozen embedding (as the shipped one does) still fine-tunes its whole
    encoder: the head pools `classifier_pooling_layer` (default: the last layer) and every layer gets a gradient."""
    input_ids, attention_mask = batch
    input_ids, attention_mask = input_ids[:-1], attention_mask[:-1]
    torch.manual_seed(0)
    model = BarcodeMAEForSequenceClassification(BarcodeMAEConfig(pooling_layer=0, num_labels=3, **tiny_config_kwargs()))
    model.eval()  # no dropout: the head's input is exactly the pooled hidden state
    model(input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 2, 1, 1])).loss.backward()
    layers = model.barcodemae.encoder.layer
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layers.parameters())
    last = model.barcodemae(input_ids, attention_mask=attention_mask, pooling_layer=-1).pooler_output
    torch.testing.assert_close(model(input_ids, attention_mask=attention_mask).logits, model.classifier(last))
    model.config.classifier_pooling_layer = 0
    first = model.barcodemae(input_ids, attention_mask=attention_mask).pooler_output  # config.pooling_layer = 0
    torch.testing.assert_close(model(input_ids, attention_mask=attention_mask).logits, model.classifier(first))
    with pytest.raises(ValueError, match="classifier_pooling_layer must be in"):
        BarcodeMAEConfig(classifier_pooling_layer=3, **tiny_config_kwargs())


def test_eager_and_sdpa_attention_agree_in_training(batch):
    """Same loss and gradients (dropout off, fixed masking noise) whichever attention function runs."""
    input_ids, attention_mask = batch
    noise = torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(7))
    results = []
    for attn_implementation in ("sdpa", "eager"):
        model = make_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        model.set_attn_implementation(attn_implementation)
        assert model.decoder.layer[0].attention.self.config._attn_implementation == attn_implementation
        loss = model(input_ids, attention_mask, noise).loss
        loss.backward()
        results.append((loss, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}))
    (sdpa_loss, sdpa_grads), (eager_loss, eager_grads) = results
    torch.testing.assert_close(eager_loss, sdpa_loss)
    assert eager_grads.keys() == sdpa_grads.keys()
    for name in sdpa_grads:
        torch.testing.assert_close(eager_grads[name], sdpa_grads[name], atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_dropout(dtype):
    hidden = torch.randn(301, 257).to(dtype).requires_grad_()  # a size that is not a multiple of 4
    torch.manual_seed(0)
    out = fast_dropout(hidden, 0.1, training=True)
    dropped = out == 0
    # Binomial(77357, 0.1): the standard deviation of the dropped fraction is 0.0011.
    assert abs(dropped.float().mean().item() - 0.1) < 0.005
    scale = torch.tensor(1 / 0.9, dtype=dtype)
    torch.testing.assert_close(out[~dropped], hidden[~dropped] * scale, atol=0, rtol=0)
    out.sum().backward()
    torch.testing.assert_close(hidden.grad, torch.where(dropped, 0.0, scale).to(dtype), atol=0, rtol=0)
    # Seeded like the rest of torch (exact resume depends on it); masks of successive calls differ.
    torch.manual_seed(0)
    again = fast_dropout(hidden, 0.1, training=True)
    assert torch.equal(again, out) and not torch.equal(fast_dropout(hidden, 0.1, training=True) == 0, dropped)
    assert fast_dropout(hidden, 0.1, training=False) is hidden and fast_dropout(hidden, 0.0, training=True) is hidden
    assert torch.all(fast_dropout(hidden, 1.0, training=True) == 0)
    # Columns are not correlated (each 64-bit draw feeds four neighbouring elements).
    rates = (fast_dropout(torch.ones(40000, 8, dtype=dtype), 0.5, training=True) == 0).float()
    assert (rates.mean(0) - 0.5).abs().max() < 0.01
    assert abs(torch.corrcoef(rates[:, :4].T)[0, 1:].abs().max().item()) < 0.02


def test_hamming_soft_targets_match_the_reference_definition():
    from modeling_barcodemae import hamming_soft_targets

    labels = torch.tensor([0, 4**3 - 1, 27])  # AAA, TTT and one other 3-mer (class = base-4 digits, first = lowest)
    targets = hamming_soft_targets(labels, k=3)
    digits = torch.stack([(torch.arange(64) // 4**i) % 4 for i in range(3)], -1)
    for row, label in enumerate(labels):
        distance = (digits != digits[label]).sum(-1).float()  # the reference's measure_hamming_distances_wildcard
        assert torch.allclose(targets[row], torch.softmax(-distance, -1))
    assert targets.argmax(-1).tolist() == labels.tolist()


def test_masked_loss_weight_adds_the_visible_tokens(batch):
    input_ids, attention_mask = batch
    noise = torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(3))
    paper = make_model()(input_ids, attention_mask, noise=noise)
    model = make_model(masked_loss_weight=0.25)
    out = model(input_ids, attention_mask, noise=noise)
    assert torch.allclose(out.masked_loss, paper.masked_loss) and torch.allclose(paper.loss, paper.masked_loss)
    keep = ~out.mask & attention_mask.bool()
    targets = keep & (input_ids != 1)  # the visible real k-mers, [UNK] excluded
    hidden_states = model._encode_and_reconstruct(input_ids, attention_mask, keep, out.mask)[1]
    visible = torch.nn.functional.cross_entropy(model.head(hidden_states[targets]).float(), input_ids[targets] - 2)
    assert torch.allclose(out.loss, 0.25 * out.masked_loss + 0.75 * visible, atol=1e-5)


def test_contrastive_term_pulls_two_views_of_a_barcode_together(barcodes, tmp_path):
    from modeling_barcodemae import info_nce

    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator)
    assert info_nce(a, a, 0.1) < info_nce(a, b, 0.1)  # identical views score better than unrelated ones
    tokenizer = BarcodeMAETokenizer()
    first = tokenizer(barcodes[:4], padding=True, return_tensors="pt")
    second = tokenizer([sequence[3:] for sequence in barcodes[:4]], padding=True, return_tensors="pt")
    views = dict(input_ids=first["input_ids"], attention_mask=first["attention_mask"],
                 second_view_input_ids=second["input_ids"], second_view_attention_mask=second["attention_mask"])
    model = make_model(contrastive_weight=0.5)
    torch.manual_seed(1)
    out = model(**views)
    assert out.contrastive_loss is not None and torch.allclose(out.loss, out.masked_loss + 0.5 * out.contrastive_loss)
    out.loss.backward()
    assert model.contrastive_head[0].weight.grad.abs().sum() > 0
    assert make_model()(**views).contrastive_loss is None  # off by default: the second view is ignored
    # The projection head is pretraining-only: the encoder loads without it, quietly.
    model.save_pretrained(tmp_path)
    _, info = BarcodeMAEModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_overlapping_kmer_profile_counts_every_reading_frame(barcodes):
    from modeling_barcodemae import overlapping_kmer_profile

    tokenizer = BarcodeMAETokenizer(k_mer=3)
    sequences = ["ACGTTGCA", "AAAANAAATTT", barcodes[0][:90]]
    input_ids = tokenizer(sequences, padding=True, return_tensors="pt")["input_ids"]
    profile = overlapping_kmer_profile(input_ids, k=3)
    codes = {"".join(kmer): index for index, kmer in enumerate(__import__("itertools").product("ACGT", repeat=3))}
    for row, sequence in enumerate(sequences):
        chunks = [sequence[i : i + 3] for i in range(0, len(sequence) // 3 * 3, 3)]  # the tokens: whole 3-mers only
        kept = "".join(chunk if set(chunk) <= set("ACGT") else "NNN" for chunk in chunks)  # an [UNK] token: 3 unknowns
        windows = [kept[i : i + 3] for i in range(len(kept) - 2) if set(kept[i : i + 3]) <= set("ACGT")]
        expected = torch.zeros(64)
        for window in windows:
            expected[codes[window]] += 1 / len(windows)
        assert torch.allclose(profile[row], expected)


def test_profile_term_is_added_and_its_head_is_pretraining_only(batch, tmp_path):
    input_ids, attention_mask = batch
    model = make_model(profile_loss_weight=2.0)
    out = model(input_ids, attention_mask, noise=torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(0)))
    assert out.profile_loss > 0 and torch.allclose(out.loss, out.masked_loss + 2.0 * out.profile_loss)
    model.save_pretrained(tmp_path)
    _, info = BarcodeMAEModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
