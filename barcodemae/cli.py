"""`barcodemae`: embed, identify, cluster, evaluate, convert. Thin: parsing here, the work in the package."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from barcodemae.errors import UserError, run_main

DEFAULT_MODEL = "kmer:6"  # the best encoder measured so far for assignment and clustering (README: Results)


def _add_input(parser: argparse.ArgumentParser, name: str = "input", splits: str = "--splits") -> None:
    parser.add_argument(name, help="FASTA, CSV, TSV or parquet file of barcodes (.gz ok)")
    parser.add_argument(splits, nargs="+", default=None, help="only rows whose `split` column is one of these")


def _add_model(parser: argparse.ArgumentParser) -> None:
    from barcodemae.encoders import PRECISIONS

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"kmer:K, a model folder or Hub id, NAME@LAYER (default {DEFAULT_MODEL})")
    group.add_argument("--layer", type=int, default=None, help="pool hidden state L (0 = embeddings) instead of the last")
    group.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                       help="auto: bf16 autocast on GPUs and CPUs with bf16 instructions, else fp32; int8: dynamic "
                       "int8 linear layers on the CPU (1.5-1.7x on AVX2 CPUs, BENCHMARKS.md)")  # fmt: skip
    group.add_argument("--batch_size", type=int, default=64)
    group.add_argument("--device", default="auto")
    group.add_argument("--sequence_column", default=None, help="default: dna_barcode, nucleotides or sequence")
    group.add_argument("--id_column", default=None, help="default: processid, sampleid, id or record_id, else the row")
    group.add_argument("--no_progress", action="store_true")


def _encoder(args):
    from barcodemae.encoders import auto_precision, load_encoder

    precision = auto_precision(args.device) if args.precision == "auto" else args.precision
    return load_encoder(args.model, args.layer, device=args.device, batch_size=args.batch_size, precision=precision)


def _embed(encoder, sequences, args, label: str):
    return encoder.embed(sequences, progress=False if args.no_progress else f"{encoder.name} {label}")


def command_embed(args) -> None:
    from barcodemae.files import EMBEDDING_SUFFIXES, check_output_path, read_records, write_embeddings

    output = check_output_path(args.output, EMBEDDING_SUFFIXES)
    encoder = _encoder(args)
    started = time.perf_counter()
    records = read_records(args.input, args.splits, args.sequence_column, args.id_column)
    vectors = _embed(encoder, records.sequences, args, "")
    written = write_embeddings(output, records.ids, vectors)
    elapsed = time.perf_counter() - started
    print(f"{len(records)} barcodes x {vectors.shape[1]} dims ({encoder.name}) in {elapsed:.1f} s "
          f"({len(records) / elapsed:.0f} sequences/s): {', '.join(map(str, written))}")  # fmt: skip


def command_identify(args) -> None:
    from barcodemae.cache import EmbeddingCache
    from barcodemae.files import check_output_path, read_records, write_table
    from barcodemae.identify import RANKS, Reference, identify

    output = check_output_path(args.output, (".tsv", ".txt"))
    encoder = _encoder(args)
    reference_records = read_records(args.reference, args.reference_splits, args.sequence_column, args.id_column,
                                     label_columns=RANKS, deduplicate=True)  # fmt: skip
    if not reference_records.labels:
        raise UserError(f"{args.reference}: no label column: the reference needs one of {', '.join(RANKS)}")
    queries = read_records(args.queries, args.query_splits, args.sequence_column, args.id_column)
    cache = EmbeddingCache(args.cache_dir)
    reference_vectors = cache.embed_layers(encoder, reference_records.sequences, "reference", not args.no_progress)[0]
    sequences = reference_records.sequences if args.candidates else None
    reference = Reference.calibrated(reference_vectors, reference_records.labels, sequences, args.quantile)
    query_vectors = _embed(encoder, queries.sequences, args, "queries")
    table = identify(reference, query_vectors, args.neighbours, queries.sequences, args.candidates, not args.no_progress)
    table.insert(0, "query", queries.ids)
    table["nearest_reference"] = [reference_records.ids[index] for index in table["nearest_reference"]]
    write_table(output, table)
    summary = ", ".join(f"{rank} {(table[rank] != '').mean():.0%} (threshold {reference.thresholds[rank]:.3f})"
                        for rank in RANKS if rank in table)  # fmt: skip
    print(f"{len(queries)} queries against {len(reference_records)} reference barcodes ({encoder.name}); "
          f"called: {summary}; written: {output}")


def command_cluster(args) -> None:
    import pandas as pd

    from barcodemae.clustering import identity_clusters, threshold_clusters
    from barcodemae.files import check_output_path, read_records, write_table

    output = check_output_path(args.output, (".tsv", ".txt"))
    encoder = _encoder(args)
    records = read_records(args.input, args.splits, args.sequence_column, args.id_column, label_columns=[args.compare_to])
    vectors = _embed(encoder, records.sequences, args, "")
    if args.identity:
        clusters = identity_clusters(vectors, records.sequences, args.identity, args.candidates, not args.no_progress)
        rule = f"single linkage at {args.identity:g} identity over {args.candidates} candidates"
    else:
        clusters = threshold_clusters(vectors, args.threshold, args.linkage)
        rule = f"{args.linkage} linkage at cosine distance {args.threshold:g}"
    write_table(output, pd.DataFrame({"id": records.ids, "cluster": clusters}))
    message = f"{len(records)} barcodes in {clusters.max() + 1} clusters ({encoder.name}, {rule})"
    truth = records.labels.get(args.compare_to)
    if truth is not None and (truth != "").any():
        from sklearn.metrics import adjusted_mutual_info_score

        known = truth != ""
        ami = adjusted_mutual_info_score(truth[known], clusters[known])
        message += f"; AMI against {args.compare_to} {ami:.3f} ({known.sum()} barcodes, {len(set(truth[known]))} groups)"
    print(f"{message}; written: {output}")


def command_evaluate(args) -> None:
    from barcodemae.protocol import ProtocolSettings, evaluate

    options = {name: getattr(args, name) for name in ProtocolSettings.__dataclass_fields__ if hasattr(args, name)}
    report = evaluate(args.models, args.data_file, args.output_dir, cache_dir=args.cache_dir,
                      progress=not args.no_progress, plots=not args.no_plots, **options)  # fmt: skip
    print(report["table"])
    print(f"\nwritten: {args.output_dir}/results.md, results.json, umap_*.png")


def _evaluate_parser(parser: argparse.ArgumentParser) -> None:
    from barcodemae.encoders import PRECISIONS
    from barcodemae.protocol import FIXTURE

    parser.add_argument("--models", nargs="+", required=True, help="kmer:K, a model folder or Hub id, optionally @LAYER")
    parser.add_argument("--data_file", default=str(FIXTURE), help="BIOSCAN-5M-layout metadata (default: the fixture)")
    parser.add_argument("--output_dir", default="outputs/probes")
    parser.add_argument("--cache_dir", default=None, help="embedding cache (default: OUTPUT_DIR/cache)")
    parser.add_argument("--layer", type=int, default=None, help="pool hidden state L (0 = embeddings) instead of the last")
    parser.add_argument("--all_layers", action="store_true", help="probe every layer (one forward pass per batch)")
    parser.add_argument("--reading_frames", action="store_true", help="average the embeddings over start offsets 0..k-1")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16 = autocast (fast on AMX CPUs); int8 = dynamic int8 linear layers (CPU)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_length", type=int, default=None, help="nucleotides kept per barcode (default 660)")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--unseen_split", default="test_unseen")
    parser.add_argument("--probe_c", type=float, default=1.0, help="inverse L2 strength of the linear probe")
    parser.add_argument("--probe_max_iter", type=int, default=100)
    parser.add_argument("--umap_n_neighbors", type=int, default=15)
    parser.add_argument("--umap_min_dist", type=float, default=0.0)
    parser.add_argument("--umap_components", type=int, default=50)
    parser.add_argument("--bin_max_points", type=int, default=None, help="subsample the BIN task (seeded)")
    parser.add_argument("--no_plots", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no_progress", action="store_true")


def command_convert(args) -> None:
    from barcodemae.convert import convert

    convert(args.source, args.out_dir, kind=args.kind, verify_output=not args.no_verify, force=args.force)


def build_parser() -> argparse.ArgumentParser:
    from barcodemae.clustering import (
        DEFAULT_CLUSTER_CANDIDATES, DEFAULT_IDENTITY, DEFAULT_LINKAGE, DEFAULT_THRESHOLD, LINKAGES,
    )
    from barcodemae.convert import add_arguments as add_convert_arguments
    from barcodemae.identify import DEFAULT_CANDIDATES, DEFAULT_NEIGHBOURS, DEFAULT_QUANTILE

    parser = argparse.ArgumentParser(prog="barcodemae", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = commands.add_parser("embed", help="embed every barcode of a file; write parquet (id, embedding) or .npy")
    _add_input(embed)
    embed.add_argument("--output", required=True, help="OUT.parquet, or OUT.npy (+ OUT.ids.txt)")
    _add_model(embed)
    embed.set_defaults(run=command_embed)

    identify = commands.add_parser("identify", help="assign species/genus/family/order from a labelled reference")
    _add_input(identify, "queries", "--query_splits")
    identify.add_argument("--reference", required=True, help="labelled barcodes (columns species, genus, family, order)")
    identify.add_argument("--reference_splits", nargs="+", default=None)
    identify.add_argument("--output", required=True, help="OUT.tsv: one row per query")
    identify.add_argument("--neighbours", type=int, default=DEFAULT_NEIGHBOURS, help="k nearest references per query")
    identify.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES,
                          help="nearest references by embedding that alignment identity re-ranks; 0: cosine only")
    identify.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE,
                          help="abstention: quantile of the reference's nearest-relative similarities per rank")  # fmt: skip
    identify.add_argument("--cache_dir", default=None, help="keep the reference embeddings here between runs")
    _add_model(identify)
    identify.set_defaults(run=command_identify)

    cluster = commands.add_parser("cluster", help="BIN-like clusters, no cluster count needed")
    _add_input(cluster)
    cluster.add_argument("--output", required=True, help="OUT.tsv: id, cluster")
    cluster.add_argument("--identity", type=float, default=DEFAULT_IDENTITY,
                         help="join barcodes at least this alike (alignment identity); 0: cosine clustering instead")
    cluster.add_argument("--candidates", type=int, default=DEFAULT_CLUSTER_CANDIDATES,
                         help="cosine-nearest barcodes aligned to each barcode")
    cluster.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                         help="with --identity 0: the cosine distance at which to cut")
    cluster.add_argument("--linkage", choices=LINKAGES, default=DEFAULT_LINKAGE, help="with --identity 0")
    cluster.add_argument("--compare_to", default="dna_bin", help="report the AMI against this column when present")
    _add_model(cluster)
    cluster.set_defaults(run=command_cluster)

    evaluate = commands.add_parser("evaluate", help="the BIOSCAN-5M frozen-feature protocol, models side by side")
    _evaluate_parser(evaluate)
    evaluate.set_defaults(run=command_evaluate)

    convert = commands.add_parser("convert", help="original BarcodeMAE/BarcodeBERT checkpoint to a Hub folder")
    add_convert_arguments(convert)
    convert.set_defaults(run=command_convert)
    return parser


def _main(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    import datasets

    datasets.disable_progress_bars()  # the file-reading bars; the embedding bar follows --no_progress
    args.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """The `barcodemae` console script."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
