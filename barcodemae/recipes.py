"""Named pretraining recipes: the objective fields of `BarcodeMAEConfig` and the optimiser settings of train.py that
define each one, in one place (train.py's `--recipe`, the study in experiments/feature_study.py).

`paper` is the paper's recipe, i.e. the `BarcodeMAEConfig` defaults with train.py's optimiser. RESULTS.md ("The
recipe study", and "Reading frames" for barcodes registered to one reading frame) reports what each recipe gives
(frozen-feature probes on real barcodes) and why `DEFAULT_RECIPE` is train.py's default.
"""

REFERENCE_OPTIMISER = {  # bioscan-ml/BarcodeMAE pretraining.py: AdamW, lr 1e-4 per 64 barcodes, OneCycle, wd 1e-5
    "learning_rate": 1e-4, "lr_scheduler": "onecycle", "weight_decay": 1e-5, "adam_beta2": 0.999,
}  # fmt: skip
RECIPES: dict[str, dict] = {
    "paper": {},  # masked k-mers only, one-hot targets
    # The paper's objective, features pooled from the embedding layer (the learned k-mer embeddings): the best frozen
    # features of the recipe study at 4+4 x 256 without registration: within an untrained encoder's seed range.
    "paper_layer0": {"pooling_layer": 0},
    "visible": {"masked_loss_weight": 0.5},  # the reference's --separate_loss --masked_loss_weight 0.5
    # The visible-token term, features pooled from the embedding layer: with frame registration, the one recipe whose
    # frozen features beat an untrained encoder by more than the seed spread (RESULTS.md, "Reading frames").
    "visible_layer0": {"masked_loss_weight": 0.5, "pooling_layer": 0},
    "visible_soft": {"masked_loss_weight": 0.5, "hamming_soft_targets": True},
    "soft": {"hamming_soft_targets": True},  # the reference's --pretrain_levenshtein
    "reference_optimiser": REFERENCE_OPTIMISER,
    "visible_mask25": {"masked_loss_weight": 0.5, "mask_ratio": 0.25},
    "visible_mask75": {"masked_loss_weight": 0.5, "mask_ratio": 0.75},
    "contrastive": {"contrastive_weight": 1.0},  # ours: InfoNCE between two reading-frame views
    "visible_contrastive": {"masked_loss_weight": 0.5, "contrastive_weight": 1.0},
    "contrastive_strong": {"contrastive_weight": 5.0},
    "profile": {"profile_loss_weight": 1.0},  # ours: pooled visible features predict the whole k-mer profile
    "visible_profile": {"masked_loss_weight": 0.5, "profile_loss_weight": 1.0},
    # ours: embedding cosine distilled from alignment identity over batches of k-mer neighbours (issue: reading frames)
    "identity": {"identity_distillation_weight": 1.0},
    "visible_identity": {"masked_loss_weight": 0.5, "identity_distillation_weight": 1.0},
    # ours: the last layer's cosine distilled from the non-learned pair's (6-mer and amino-acid 3-mer frequencies of
    # the translation) over batches of k-mer neighbours, at the student's temperature: the transformer learns the
    # protein-level similarity that ranks relatives of other species, from the visible half of each barcode
    "visible_teacher": {"masked_loss_weight": 0.5, "identity_distillation_weight": 1.0,
                        "distillation_teacher": "kmer:6+aa:3", "identity_temperature": 0.05, "pooling_layer": -1},
}
DEFAULT_RECIPE = "visible_layer0"

SIZE_PRESETS: dict[str, dict] = {  # encoder and decoder sizes (train.py --model_size)
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                  decoder_hidden_size=256, decoder_num_hidden_layers=4, decoder_num_attention_heads=4,
                  decoder_intermediate_size=1024),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                 decoder_hidden_size=128, decoder_num_hidden_layers=2, decoder_num_attention_heads=2,
                 decoder_intermediate_size=512),
    "paper": {},  # the BarcodeMAEConfig defaults: 6-mers, 660 nt, 6+6 layers x 768 (6 heads), 50% masking
}  # fmt: skip
