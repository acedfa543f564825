"""`barcodemae`: embed, identify, cluster, evaluate, convert. Thin: parsing and checking the options here, the work
in the package."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from barcodemae.errors import UserError, command_line_spelling, run_main

DEFAULT_MODEL = "kmer:6"  # the best encoder measured so far for assignment and clustering (README: Results)
MODEL_SPECS = ("kmer:K, aa:K, a model folder or Hub id (NAME@LAYER: that layer), or such specs joined by + "
               "(kmer:6+aa:3: each a unit vector, side by side)")
INDEX_MODEL = ("the index's own where it is kmer:K, aa:K or the bundled model (another must be named: an index "
               "does not choose what runs)")  # how a model that an index names loads (`search.store.index_model`)
DESCRIPTION = """DNA barcodes (COI) to vectors with BarcodeMAE or k-mer frequencies, and what the vectors are for:
species-to-order identification from a labelled reference, BIN-like clusters, the BIOSCAN-5M frozen-feature
evaluation. Barcodes come from FASTA, CSV, TSV or parquet files (.gz ok)."""
EPILOG = "`barcodemae COMMAND --help` lists the options of a command, with their defaults."


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as a `UserError`: one `error:` line from `run_main`, as for bad input."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, except where there is nothing to show (None, an on/off flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _number(cast: Callable[[str], float], accept: Callable[[float], bool], requirement: str) -> Callable[[str], float]:
    """An argparse `type`: `cast(text)` when `accept` holds for it, else a usage error stating `requirement`."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{requirement}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
        return value

    return parse


def _int_at_least(minimum: int) -> Callable[[str], int]:
    return _number(int, lambda value: value >= minimum, f"must be a whole number of at least {minimum}")


POSITIVE_INT = _int_at_least(1)
LAYER = _number(int, lambda value: value >= -1, "must be a layer: -1 (the last), 0 (the embeddings), 1, 2, ...")
OPEN_FRACTION = _number(float, lambda value: 0.0 < value < 1.0, "must be a fraction strictly between 0 and 1")
POSITIVE_FLOAT = _number(float, lambda value: value > 0.0, "must be a number above 0")


def _add_input(parser: argparse.ArgumentParser, name: str = "input", splits: str = "--splits") -> None:
    parser.add_argument(name, help="FASTA, CSV, TSV or parquet file of barcodes (.gz ok)")
    parser.add_argument(splits, nargs="+", default=None, help="only rows whose `split` column is one of these")


def _add_embedding_options(parser) -> None:
    """The options every command that embeds barcodes has (`parser`: a parser or an argument group)."""
    from barcodemae.data import BAD_SEQUENCE_POLICIES, MAX_NUCLEOTIDES

    parser.add_argument("--max_length", type=_int_at_least(0), default=MAX_NUCLEOTIDES,
                        help="nucleotides kept per barcode, the first ones once cleaned (BIOSCAN-5M's input): what "
                        "every encoder embeds, what is aligned and indexed; 0: all")  # fmt: skip
    parser.add_argument("--layer", type=LAYER, default=None,
                        help="pool hidden state L (0 = embeddings, -1 = the last); default: the layer the model's "
                        "config pools (BarcodeMAE's pooling_layer), else the last")  # fmt: skip
    parser.add_argument("--batch_size", type=POSITIVE_INT, default=64, help="barcodes per forward pass of a model")
    parser.add_argument("--device", default="auto", help="auto: the GPU when there is one, else the CPU")
    parser.add_argument("--on_bad_sequence", choices=BAD_SEQUENCE_POLICIES, default="error",
                        help="a barcode with a character that is not a nucleotide code, or without a k-mer of "
                        "unambiguous nucleotides to embed (shorter than k, all N): error stops at the first, naming "
                        "its row; skip drops them and says how many")  # fmt: skip
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")


def _add_reference_splits(parser: argparse.ArgumentParser, name: str = "--reference_splits") -> None:
    parser.add_argument(name, nargs="+", default=None, help="only reference rows whose `split` column is one of these")


def _add_calibration(parser: argparse.ArgumentParser, measure_help: str, index_note: str) -> None:
    """How references are ranked and their abstention thresholds calibrated (identify, index build)."""
    from barcodemae.alignment import DEFAULT_MEASURE, IDENTITY_MEASURES
    from barcodemae.identify import DEFAULT_QUANTILE

    parser.add_argument("--rank_by", choices=("identity", "cosine"), default="identity",
                        help="identity: the --candidates cosine-nearest references re-ranked by alignment identity, "
                        f"abstention thresholds in identity; cosine: cosine similarity only, thresholds in cosine{index_note}")  # fmt: skip
    parser.add_argument("--measure", choices=list(IDENTITY_MEASURES), default=DEFAULT_MEASURE,
                        help=f"with --rank_by identity: the alignment identity; {measure_help}")
    parser.add_argument("--quantile", type=OPEN_FRACTION, default=DEFAULT_QUANTILE,
                        help="abstention: quantile of the reference's nearest-relative similarities per rank")


def _add_search(parser: argparse.ArgumentParser, what: str) -> None:
    from barcodemae.search.projection import COMPACT_DIMS, COMPACT_MIN_REFERENCES, SEARCHES

    parser.add_argument("--search", choices=SEARCHES, default=SEARCHES[0],
                        help=f"how {what} are searched: exact: cosine on the model's own vectors; compact: on a "
                        f"{COMPACT_DIMS}-dim float16 projection (512 bytes a barcode; identify re-scores its proposals "
                        f"by exact cosine); auto: compact from {COMPACT_MIN_REFERENCES} barcodes on, for models of more than "
                        f"{COMPACT_DIMS} dims (kmer:6)")  # fmt: skip


def _add_relatives(parser: argparse.ArgumentParser, note: str) -> None:
    from barcodemae.identify import DEFAULT_RELATIVES_MODEL

    parser.add_argument("--relatives_model", default=None,
                        help="with --rank_by identity: a second embedding that proposes the candidates of queries whose "
                        "best hit is below identify's --species_match (a --model spec, or none): more "
                        "genera and families right for species missing from the reference (docs/identification.md); "
                        f"default: {DEFAULT_RELATIVES_MODEL}, amino-acid 3-mers of the translated barcode{note}")


def _add_model(parser: argparse.ArgumentParser, model_help: str | None = None) -> None:
    """The model and embedding options; `model_help`: --model has no default value (the command resolves it)."""
    from barcodemae.encoders import PRECISIONS

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=None if model_help else DEFAULT_MODEL,
                       help=model_help or MODEL_SPECS)
    group.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                       help="auto: bf16 autocast on GPUs and CPUs with bf16 instructions, else fp32; int8: dynamic "
                       "int8 linear layers on the CPU (1.5-1.7x on AVX2 CPUs, BENCHMARKS.md)")  # fmt: skip
    group.add_argument("--sequence_column", default=None, help="default: dna_barcode, nucleotides or sequence")
    group.add_argument("--id_column", default=None, help="default: processid, sampleid, id or record_id, else the row")
    _add_trust(group)
    _add_embedding_options(group)


def _add_trust(parser) -> None:
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="run the Python code that a model folder or Hub repository ships (auto_map in its config) "
                        "for a model other than BarcodeMAE, which loads through this package's own classes: only for "
                        "models whose code you trust")  # fmt: skip


def _encoder(args, model: str | None = None, revision: str | None = None):
    """The encoder of --model (`model` when that is not given; `revision`: its Hub revision)."""
    from barcodemae.encoders import auto_precision, load_encoder, non_learned_encoder

    name = args.model or model or DEFAULT_MODEL
    if args.no_progress and non_learned_encoder(name) is None:  # kmer:K, aa:K (joined by +) import no transformers
        from transformers.utils.logging import disable_progress_bar

        disable_progress_bar()  # the weight-loading bar
    precision = auto_precision(args.device) if args.precision == "auto" else args.precision
    return load_encoder(name, args.layer, device=args.device, trust_remote_code=args.trust_remote_code,
                        revision=revision, batch_size=args.batch_size, precision=precision)  # fmt: skip


def _encoder_named(args, name: str, revision: str | None = None):
    """The encoder of model `name` with the other embedding options of `args` (a second encoder: relatives)."""
    return _encoder(argparse.Namespace(**{**vars(args), "model": name}), revision=revision)


def _embed(encoder, sequences, args, label: str):
    return encoder.embed(sequences, progress=False if args.no_progress else f"{encoder.name} {label}")


def _read(path: str, splits, args, encoder, **options):
    """The barcodes of `path` that `encoder` can embed (`read_records`; bad ones per --on_bad_sequence)."""
    from barcodemae.files import read_records

    return read_records(path, splits, args.sequence_column, args.id_column, max_length=args.max_length,
                        min_run=encoder.min_run, on_bad_sequence=args.on_bad_sequence, **options)  # fmt: skip


def command_embed(args) -> None:
    from barcodemae.embedding_job import embed_to_shards, parts_folder, process_device
    from barcodemae.files import EMBEDDING_SUFFIXES, check_output_path, scan_records, write_embedding_chunks

    output = check_output_path(args.output, EMBEDDING_SUFFIXES)
    args.device = process_device(args.device)  # under torchrun / accelerate launch: this process's GPU
    encoder = _encoder(args)
    started = time.perf_counter()
    scan = lambda: scan_records([args.input], args.splits, args.sequence_column, args.id_column,  # noqa: E731
                                max_length=args.max_length, min_run=encoder.min_run,
                                on_bad_sequence=args.on_bad_sequence)  # fmt: skip
    shards = embed_to_shards(scan, encoder, parts_folder(output), args.shard_size, progress=not args.no_progress)
    if shards.processes.rank != 0:
        shards.processes.close()  # waits for rank 0 to write the output
        return
    written = write_embedding_chunks(output, shards.id_chunks(), shards.rows)
    dims, kept = shards.dims, shards.rows - shards.embedded
    shards.remove()
    shards.processes.close()
    elapsed = time.perf_counter() - started
    how = [f"{shards.processes.world} processes"] if shards.processes.world > 1 else []
    how += [f"{kept} kept from an interrupted run"] if kept else []
    print(f"{shards.rows} barcodes x {dims} dims ({encoder.name}) in {elapsed:.1f} s "
          f"({shards.rows / elapsed:.0f} sequences/s{''.join(f', {part}' for part in how)}): "
          f"{', '.join(map(str, written))}")  # fmt: skip


def _reference_selection(paths: Sequence[str], args, encoder):
    """The labelled barcodes of every file in `paths` that `encoder` can embed, each barcode once (`scan_records`)."""
    from barcodemae.files import scan_records
    from barcodemae.identify import RANKS

    selection = scan_records(paths, args.reference_splits, args.sequence_column, args.id_column, RANKS, True,
                             args.max_length, encoder.min_run, args.on_bad_sequence)  # fmt: skip
    for file in selection.files:
        if not any(file.label_columns.values()):
            raise UserError(f"{file.path}: no label column: the reference needs one of {', '.join(RANKS)}")
    return selection


def _build_index(folder, paths: Sequence[str], args, encoder, shard_size: int = 0, relatives=None):
    """A new index of the reference files `paths` (`search.index.build_index`; None on processes other than the
    first) and how many repeated barcodes it left out; `shard_size` 0: the default; `relatives`: the relatives
    encoder."""
    from barcodemae.embedding_job import DEFAULT_SHARD_SIZE
    from barcodemae.search.index import build_index

    scanned = []  # rank 0's selection

    def scan():
        scanned.append(_reference_selection(paths, args, encoder))
        return scanned[0]

    index = build_index(folder, encoder, scan, args.measure, args.quantile, args.rank_by, not args.no_progress,
                        [Path(path).name for path in paths], args.search, shard_size or DEFAULT_SHARD_SIZE,
                        relatives)  # fmt: skip
    return index, scanned[0].repeated if scanned else 0


def _loaded_index(args):
    """The index of --index and its encoder: --model, by default the index's own where an index may load it
    (`search.store.index_model`); the index refuses another (`ReferenceIndex.check_encoder`)."""
    from barcodemae.search.index import load_index
    from barcodemae.search.store import index_model

    index = load_index(args.index)
    return index, _encoder_named(args, *index_model(index.folder, index.settings["encoder"], args.model, "--model"))


def command_identify(args) -> None:
    import tempfile

    from barcodemae.files import check_output_path, write_table
    from barcodemae.identify import RANKS, identify

    output = check_output_path(args.output, (".tsv", ".txt"))
    if (args.index is None) == (args.reference is None):
        raise UserError("identify needs a reference: give --reference FILE... or --index DIR (one of them)")
    relatives_encoder = _relatives_encoder(args)
    with tempfile.TemporaryDirectory(prefix="barcodemae-reference-") as temporary:
        if args.index is not None:
            index, encoder = _loaded_index(args)
        else:
            encoder = _encoder(args)
            index = _build_index(Path(temporary) / "index", args.reference, args, encoder, 0, relatives_encoder)[0]
        reference = index.reference(encoder, args.measure, args.quantile, args.rank_by)
        queries = _read(args.queries, args.query_splits, args, encoder)
        query_vectors = _embed(encoder, queries.sequences, args, "queries")
        by_identity = args.rank_by == "identity"
        relatives = _relatives(args, relatives_encoder, index, reference, queries.sequences)
        table = identify(reference, query_vectors, args.neighbours, queries.sequences if by_identity else None,
                         args.candidates, not args.no_progress, args.rule, args.margin, relatives)  # fmt: skip
        table.insert(0, "query", queries.ids)
        table["nearest_reference"] = index.reference_ids(table["nearest_reference"])
    write_table(output, table)
    summary = ", ".join(f"{rank} {(table[rank] != '').mean():.0%} (threshold {reference.thresholds[rank]:.3f})"
                        for rank in RANKS if rank in table)  # fmt: skip
    models = encoder.name + (f", relatives by {relatives_encoder.name}" if relatives else "")
    print(f"{len(queries)} queries against {len(index)} reference barcodes ({models}); "
          f"called: {summary}; written: {output}")


def _relatives_encoder(args):
    """The relatives embedding of identify and index build: --relatives_model, by default `DEFAULT_RELATIVES_MODEL`
    where identity ranks the candidates; None for none."""
    from barcodemae.identify import DEFAULT_RELATIVES_MODEL

    if args.relatives_model == "none":
        return None
    if args.rank_by != "identity":
        if args.relatives_model is not None:
            raise UserError("--relatives_model needs --rank_by identity: it proposes candidates that identity ranks")
        return None
    return _encoder_named(args, args.relatives_model or DEFAULT_RELATIVES_MODEL)


def _relatives(args, encoder, index, reference, query_sequences: list[str]):
    """The `identify.Relatives` of `encoder` (None: none; `ReferenceIndex.relatives_reference`); a compact index
    without its vectors is searched without relatives, saying so."""
    from barcodemae.identify import Relatives

    if encoder is None:
        return None
    second = index.relatives_reference(encoder, reference, not args.no_progress)
    if second is None:
        print(f"note: {index.folder} stores no {encoder.name} relatives vectors (index build --relatives_model "
              f"{encoder.name} stores them): identifying without", file=sys.stderr)  # fmt: skip
        return None
    return Relatives(second, _embed(encoder, query_sequences, args, "queries"), args.relative_candidates,
                     args.species_match)  # fmt: skip


def command_index_build(args) -> None:
    started = time.perf_counter()
    encoder = _encoder(args)
    index, repeated = _build_index(Path(args.output), args.references, args, encoder, args.shard_size,
                                   _relatives_encoder(args))  # fmt: skip
    if index is None:
        return  # not the first process: it helped embed, the first one writes and reports
    print(f"indexed {len(index)} barcodes ({encoder.name}; {repeated} repeated barcodes kept once) in "
          f"{time.perf_counter() - started:.1f} s: {args.output}\n{index.describe()}")


def command_index_add(args) -> None:
    from barcodemae.files import read_selected
    from barcodemae.search.index import add_to_index, load_index
    from barcodemae.search.store import index_model

    started = time.perf_counter()
    args.index = args.folder
    index, encoder = _loaded_index(args)
    args.reference_splits = args.splits
    selection = _reference_selection(args.references, args, encoder)
    stored = index.settings.get("relatives")
    relatives = None if stored is None else _encoder_named(
        args, *index_model(index.folder, stored, args.relatives_model, "--relatives_model"))
    added, held = add_to_index(index, encoder, read_selected(selection), not args.no_progress, relatives)
    index = load_index(args.folder, verify="none")
    print(f"added {added} barcodes to {args.folder} ({held} already in the index and {selection.repeated} repeated in the "
          f"files, kept once; thresholds recalibrated on all {len(index)}) in {time.perf_counter() - started:.1f} s\n"
          f"{index.describe()}")


def command_index_info(args) -> None:
    from barcodemae.search.index import load_index

    print(load_index(args.folder, verify="all").describe())


def command_cluster(args) -> None:
    import pandas as pd

    from barcodemae.clustering import centroid_clusters, identity_clusters, threshold_clusters
    from barcodemae.files import check_output_path, write_table
    from barcodemae.search.projection import embed_for_search, search_space

    output = check_output_path(args.output, (".tsv", ".txt"))
    encoder = _encoder(args)
    records = _read(args.input, args.splits, args, encoder, label_columns=[args.compare_to])
    projection = search_space(encoder, records.sequences, args.search)  # the neighbour search of identify's index
    vectors = embed_for_search(encoder, records.sequences, projection, not args.no_progress)
    if args.identity and args.method == "centroid":
        clusters = centroid_clusters(vectors, records.sequences, args.identity, args.candidates, not args.no_progress,
                                     args.measure, args.order)  # fmt: skip
        rule = (f"greedy centroids by {args.order} at {args.identity:g} {args.measure} identity over "
                f"{args.candidates} candidates")  # fmt: skip
    elif args.identity:
        average_up_to = args.average_up_to if args.method == "average" else 0
        clusters = identity_clusters(vectors, records.sequences, args.identity, args.candidates, not args.no_progress,
                                     args.measure, average_up_to, args.least_silhouette)  # fmt: skip
        rule = f"single linkage at {args.identity:g} {args.measure} identity over {args.candidates} candidates"
        rule += (f", average linkage within components of up to {average_up_to} where the split's silhouette is above "
                 f"{args.least_silhouette:g}" if average_up_to else "")  # fmt: skip
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
    import datasets  # the one command that reads through it (`barcodemae.data.load_splits`)

    from barcodemae.protocol import ProtocolSettings, evaluate

    datasets.disable_progress_bars()  # the file-reading bars; the embedding bar follows --no_progress

    options = {name: getattr(args, name) for name in ProtocolSettings.__dataclass_fields__ if hasattr(args, name)}
    report = evaluate(args.models, args.data_file, args.output_dir, cache_dir=args.cache_dir,
                      progress=not args.no_progress, plots=not args.no_plots, **options)  # fmt: skip
    print(report["table"])
    print(f"\nwritten: {args.output_dir}/results.md, results.json{'' if args.no_plots else ', umap_*.png'}")


def _evaluate_parser(parser: argparse.ArgumentParser) -> None:
    from barcodemae.data import FIXTURE
    from barcodemae.encoders import PRECISIONS

    parser.add_argument("--models", nargs="+", required=True, help=MODEL_SPECS)
    parser.add_argument("--data_file", default=str(FIXTURE), help="BIOSCAN-5M-layout metadata (the bundled fixture)")
    parser.add_argument("--output_dir", default="outputs/probes", help="results.md, results.json, umap_*.png")
    parser.add_argument("--cache_dir", default=None, help="embedding cache (default: OUTPUT_DIR/cache)")
    parser.add_argument("--all_layers", action="store_true", help="probe every layer (one forward pass per batch)")
    parser.add_argument("--reading_frames", action="store_true", help="average the embeddings over start offsets 0..k-1")
    _add_trust(parser)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (the default here, unlike the other commands' auto: numbers that compare across "
                        "machines); bf16 = autocast (fast on GPUs and AMX CPUs); int8 = dynamic int8 linear layers "
                        "(CPU)")  # fmt: skip
    parser.add_argument("--train_split", default="train", help="keys and training set: seen species")
    parser.add_argument("--test_split", default="test", help="queries of seen species")
    parser.add_argument("--unseen_split", default="test_unseen", help="queries of species not in --train_split")
    parser.add_argument("--probe_c", type=POSITIVE_FLOAT, default=1.0, help="inverse L2 strength of the linear probe")
    parser.add_argument("--probe_max_iter", type=POSITIVE_INT, default=100, help="L-BFGS iterations of the linear probe")
    parser.add_argument("--umap_n_neighbors", type=_int_at_least(2), default=15, help="BIN task: UMAP's n_neighbors")
    parser.add_argument("--umap_min_dist", default=0.0, help="BIN task: UMAP's min_dist",
                        type=_number(float, lambda value: 0.0 <= value <= 1.0, "must be a distance from 0 to 1"))
    parser.add_argument("--umap_components", type=POSITIVE_INT, default=50, help="BIN task: UMAP dimensions")
    parser.add_argument("--bin_max_points", type=_int_at_least(3), default=None,
                        help="subsample the BIN task (seeded) to this many barcodes")
    parser.add_argument("--no_plots", action="store_true", help="write no umap_*.png")
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="of UMAP and the BIN subsample")
    _add_embedding_options(parser)


def command_convert(args) -> None:
    from barcodemae.convert import convert

    convert(args.source, args.out_dir, kind=args.kind, verify_output=not args.no_verify, force=args.force)


def _command(commands, name: str, summary: str, run: Callable | None) -> argparse.ArgumentParser:
    """A (sub)command; `run` None: one that only holds actions of its own."""
    parser = commands.add_parser(name, help=summary, description=summary, formatter_class=_HelpFormatter)
    if run is not None:
        parser.set_defaults(run=run)
    return parser


def _add_shard_size(parser: argparse.ArgumentParser, parts: str) -> None:
    from barcodemae.embedding_job import DEFAULT_SHARD_SIZE

    parser.add_argument("--shard_size", type=POSITIVE_INT, default=DEFAULT_SHARD_SIZE,
                        help=f"barcodes per part in {parts}: what a process embeds at a time (torchrun, accelerate "
                        "launch: several) and what a rerun after an interruption keeps")  # fmt: skip


def build_parser(convert_arguments: bool = True) -> argparse.ArgumentParser:
    """The command line; without `convert_arguments`, `convert` is listed but takes no arguments (its module imports
    the whole transformers modelling stack: seconds of start-up the other commands do not need)."""
    from barcodemae.alignment import DEFAULT_MEASURE, IDENTITY_MEASURES
    from barcodemae.clustering import (
        DEFAULT_AVERAGE_UP_TO, DEFAULT_CLUSTER_CANDIDATES, DEFAULT_IDENTITY, DEFAULT_LEAST_SILHOUETTE, DEFAULT_LINKAGE,
        DEFAULT_METHOD, DEFAULT_THRESHOLD, LINKAGES, METHODS, ORDERS,
    )
    from barcodemae.identify import (
        DEFAULT_CANDIDATES, DEFAULT_MARGIN, DEFAULT_NEIGHBOURS, DEFAULT_RELATIVE_CANDIDATES, DEFAULT_RULE,
        DEFAULT_SPECIES_MATCH, RULES,
    )

    measure_help = ("overlap: a barcode hanging over an end of the other is not charged for the overhang (100+ nt "
                    "overlap); infix: the shorter aligned inside the longer, every base counted")  # fmt: skip

    parser = _Parser(prog="barcodemae", description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = _command(commands, "embed", "embed every barcode of a file; write parquet (id, embedding) or .npy",
                     command_embed)  # fmt: skip
    _add_input(embed)
    embed.add_argument("--output", required=True, help="OUT.parquet, or OUT.npy (+ OUT.ids.txt)")
    _add_shard_size(embed, "OUT.parts/")
    _add_model(embed)

    identify = _command(commands, "identify", "assign species/genus/family/order from a labelled reference",
                        command_identify)  # fmt: skip
    _add_input(identify, "queries", "--query_splits")
    identify.add_argument("--reference", nargs="+", default=None,
                          help="labelled barcodes (columns species, genus, family, order), one file or several; "
                          "indexed for this run only (barcodemae index build keeps it)")
    identify.add_argument("--index", default=None, help="a reference folder made by barcodemae index build")
    _add_reference_splits(identify)
    identify.add_argument("--output", required=True, help="OUT.tsv: one row per query")
    identify.add_argument("--neighbours", type=POSITIVE_INT, default=DEFAULT_NEIGHBOURS,
                          help="k nearest references per query")
    identify.add_argument("--candidates", type=POSITIVE_INT, default=DEFAULT_CANDIDATES,
                          help="with --rank_by identity: the nearest references by embedding that identity re-ranks")
    identify.add_argument("--rule", choices=RULES, default=DEFAULT_RULE,
                          help="best: every rank's call is the best hit's label (holds at every reference density); "
                          "lca: the same, called only where every hit within --margin of the best agrees; vote: genus "
                          "and coarser by the similarity-weighted vote of the --neighbours nearest (dense references)")
    identify.add_argument("--margin", default=DEFAULT_MARGIN, help="with --rule lca: identity (or cosine) margin",
                          type=_number(float, lambda value: 0.0 <= value <= 1.0, "must be a number from 0 to 1"))
    _add_calibration(identify, measure_help, " (an --index calibrated otherwise is recalibrated for this run)")
    _add_search(identify, "the --reference barcodes")
    _add_relatives(identify, "")
    identify.add_argument("--relative_candidates", type=POSITIVE_INT, default=DEFAULT_RELATIVE_CANDIDATES,
                          help="the candidates the relatives embedding proposes for each such query")
    identify.add_argument("--species_match", type=OPEN_FRACTION, default=DEFAULT_SPECIES_MATCH,
                          help="the identity from which a best hit counts as a species-level match")
    _add_model(identify, f"{MODEL_SPECS} (default: {DEFAULT_MODEL}); with --index, {INDEX_MODEL}")

    index = _command(commands, "index", "a saved reference for identify --index: build, add, info", None)
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = _command(index_commands, "build", "index labelled reference barcodes (one folder, memory-mapped)",
                     command_index_build)  # fmt: skip
    build.add_argument("references", nargs="+", help="FASTA, CSV, TSV or parquet files of labelled barcodes (.gz ok)")
    build.add_argument("--output", required=True, help="the index folder to make (must not exist)")
    _add_reference_splits(build)
    _add_calibration(build, measure_help, "")
    _add_search(build, "the indexed barcodes")
    _add_relatives(build, "; stored where the search is compact (other indexes embed them again on each identify)")
    _add_shard_size(build, "DIR.parts/ (the vectors)")
    _add_model(build)
    add = _command(index_commands, "add", "add the new barcodes of more files to an index (thresholds recalibrated)",
                   command_index_add)  # fmt: skip
    add.add_argument("folder", help="an index folder made by barcodemae index build")
    add.add_argument("references", nargs="+", help="FASTA, CSV, TSV or parquet files of labelled barcodes (.gz ok)")
    _add_reference_splits(add, "--splits")
    add.add_argument("--relatives_model", default=None,
                     help=f"the model of the index's stored relatives vectors; by default {INDEX_MODEL}")
    _add_model(add, f"the index's model (another is refused); by default {INDEX_MODEL}")
    info = _command(index_commands, "info", "what an index holds, its settings and sizes (files checked)",
                    command_index_info)  # fmt: skip
    info.add_argument("folder", help="an index folder")

    cluster = _command(commands, "cluster", "BIN-like clusters, no cluster count needed", command_cluster)
    _add_input(cluster)
    cluster.add_argument("--output", required=True, help="OUT.tsv: id, cluster")
    cluster.add_argument("--identity", default=DEFAULT_IDENTITY,
                         type=_number(float, lambda value: 0.0 <= value <= 1.0, "must be a fraction from 0 to 1"),
                         help="join barcodes at least this alike (alignment identity); 0: cosine clustering instead")
    cluster.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                         help="average: single linkage on identity over the candidates, then each component of up "
                         "to --average_up_to barcodes split by average linkage on all its identities where the split "
                         "is clear (--least_silhouette); single: single linkage alone; centroid: greedy centroid "
                         "clustering like VSEARCH --cluster_size / --cluster_fast (see --order)")
    cluster.add_argument("--average_up_to", type=POSITIVE_INT, default=DEFAULT_AVERAGE_UP_TO,
                         help="with --method average: the largest component split by average linkage (larger ones "
                         "are kept whole: well-sampled BINs)")
    cluster.add_argument("--least_silhouette", default=DEFAULT_LEAST_SILHOUETTE,
                         type=_number(float, lambda value: -1.0 <= value <= 1.0, "must be from -1 to 1"),
                         help="with --method average: a component's split is kept only where its mean silhouette "
                         "(on 1 - identity) is above this; -1: every split")
    cluster.add_argument("--order", choices=ORDERS, default=ORDERS[0],
                         help="with --method centroid: most abundant (identical barcodes counted) or longest first")
    cluster.add_argument("--measure", choices=list(IDENTITY_MEASURES), default=DEFAULT_MEASURE, help=measure_help)
    cluster.add_argument("--candidates", type=POSITIVE_INT, default=DEFAULT_CLUSTER_CANDIDATES,
                         help="cosine-nearest barcodes (centroids with --method centroid) aligned to each barcode")
    cluster.add_argument("--threshold", default=DEFAULT_THRESHOLD,
                         type=_number(float, lambda value: 0.0 < value < 2.0, "must be a cosine distance between 0 and 2"),
                         help="with --identity 0: the cosine distance at which to cut")
    cluster.add_argument("--linkage", choices=LINKAGES, default=DEFAULT_LINKAGE, help="with --identity 0")
    cluster.add_argument("--compare_to", default="dna_bin", help="report the AMI against this column when present")
    _add_search(cluster, "the barcodes' neighbours")
    _add_model(cluster)

    evaluate = _command(commands, "evaluate", "the BIOSCAN-5M frozen-feature protocol, models side by side",
                        command_evaluate)  # fmt: skip
    _evaluate_parser(evaluate)

    convert = _command(commands, "convert", "original BarcodeMAE/BarcodeBERT checkpoint to a Hub folder",
                       command_convert)  # fmt: skip
    if convert_arguments:
        from barcodemae.convert import add_arguments as add_convert_arguments

        add_convert_arguments(convert)
    return parser


def _main(argv: Sequence[str] | None, options: set[str]) -> None:
    """Parse and run a command; `options` gets the names of the command's options (what its messages may name)."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(convert_arguments=words[:1] == ["convert"]).parse_args(words)
    options.update(vars(args))
    args.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """The `barcodemae` console script. Its messages name options as flags, and only the flags the command has
    (`evaluate` has no --sequence_column)."""
    options: set[str] = set()
    return run_main(lambda words: _main(words, options), argv, command_line_spelling(options))


if __name__ == "__main__":
    sys.exit(main())
