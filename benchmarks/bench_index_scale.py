"""Reference size against cost: `barcodemae index build` + `identify --index` beside BLAST, VSEARCH and MMseqs2.

    OMP_NUM_THREADS=1 python benchmarks/bench_index_scale.py --data_file ../shared/data/bold_insecta_coi.csv.gz \\
        --profile --out results/index_scale
    python benchmarks/bench_index_scale.py --sizes 1000 5000 --blast_max 0 --mmseqs_max 0   # the fixture, seconds
    # accuracy of the compact search against the exact one (choose on val, report on test and the extra sets)
    OMP_NUM_THREADS=1 python benchmarks/bench_index_scale.py --accuracy --phase val --data_file ../shared/data/bold_insecta_coi.csv.gz
    OMP_NUM_THREADS=1 python benchmarks/bench_index_scale.py --accuracy --data_file ../shared/data/bold_insecta_coi.csv.gz \
        --extra_dir ../shared/data/extra

References: the real `train` barcodes of the file (prepared as everywhere: cleaned, deduplicated), and beyond their
number SYNTHETIC relatives of them: a real barcode drawn at random, each base substituted with a probability drawn
from 1-12% (within-genus differences), labelled with its genus, family and order (species unknown). So timings
beyond the real size are on synthetic data. Queries: `--queries` (300) real `test_unseen` barcodes (seeded), the
same for every tool and size. Every command is a subprocess timed by /usr/bin/time -v (wall seconds, peak resident
memory), start-up included: ours `barcodemae index build` (once) and `barcodemae identify --index` (OMP_NUM_THREADS
1 and 2); BLAST makeblastdb + blastn -task megablast; VSEARCH --usearch_global (as bench_identify.py); MMseqs2
easy-search (nucleotide). Queries/s = queries / the query command's wall time (for BLAST and MMseqs2, whose
index build is part of the command or separate, see the table). Genus accuracy: the best hit's genus against the
query's (the unseen species' genera are in the reference). `--profile` adds, at the largest size, where the time of
ours goes (in-process stages). Raw logs: `--out`/SIZE/*.log; table: `--out`/table.md; plot: `--plot`.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_identify import have, write_fasta
from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae.data import FIXTURE, load_splits  # noqa: E402

RANK_COLUMNS = ("species", "genus", "family", "order")
CODES = np.frombuffer(b"ACGT", dtype=np.uint8)


def synthetic_relatives(sequences: list[str], count: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """(parent row, barcode) of `count` relatives: each base of a random parent substituted (A/C/G/T by another of
    them) with a probability drawn per relative from 1-12%."""
    parents = rng.integers(len(sequences), size=count)
    relatives = []
    for start in range(0, count, 20000):
        chosen = parents[start : start + 20000]
        text = np.frombuffer("".join(sequences[row] for row in chosen).encode(), dtype=np.uint8).copy()
        lengths = np.array([len(sequences[row]) for row in chosen])
        rate = np.repeat(rng.uniform(0.01, 0.12, len(chosen)), lengths)
        code = np.searchsorted(CODES, text)
        plain = (code < 4) & (CODES[np.minimum(code, 3)] == text)
        hit = plain & (rng.random(len(text)) < rate)
        text[hit] = CODES[(code[hit] + rng.integers(1, 4, hit.sum())) % 4]
        ends = np.cumsum(lengths)
        joined = text.tobytes().decode()
        relatives += [joined[end - length : end] for end, length in zip(ends, lengths)]
    return parents, relatives


def reference_frame(train, size: int, seed: int) -> pd.DataFrame:
    """`size` reference barcodes: the real ones first, then synthetic relatives (see the module)."""
    real = min(size, len(train))
    frame = pd.DataFrame({"processid": [f"real{row}" for row in range(real)], "dna_barcode": train.sequences[:real],
                          **{rank: train.labels[rank][:real] for rank in RANK_COLUMNS}})  # fmt: skip
    if size <= real:
        return frame
    parents, relatives = synthetic_relatives(train.sequences, size - real, np.random.default_rng(seed))
    synthetic = pd.DataFrame({"processid": [f"syn{row}" for row in range(len(relatives))], "dna_barcode": relatives,
                              "species": "", **{rank: train.labels[rank][parents] for rank in RANK_COLUMNS[1:]}})  # fmt: skip
    return pd.concat([frame, synthetic], ignore_index=True)


def timed(command: list[str], log: Path, threads: int, cwd: Path) -> dict:
    """Run `command` under /usr/bin/time -v with OMP_NUM_THREADS=`threads`: wall seconds and peak RSS (MiB)."""
    environment = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *command], cwd=cwd, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    log.write_text(f"$ OMP_NUM_THREADS={threads} {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}; see {log}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return {"seconds": seconds, "peak_mib": int(peak.group(1)) / 1024 if peak else float("nan")}


def top_hits(path: Path, subject_column: int, score_column: int | None) -> dict[int, int]:
    """query -> reference row of the best line of a BLAST-tab file (the highest score, else the first)."""
    best: dict[int, tuple[float, int]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = line.split("\t")
        query, subject = int(fields[0]), int(fields[subject_column])
        score = float(fields[score_column]) if score_column is not None else 0.0
        if query not in best or score > best[query][0]:
            best[query] = (score, subject)
    return {query: subject for query, (_, subject) in best.items()}


def genus_accuracy(hits: dict[int, int], reference: pd.DataFrame, truth: np.ndarray) -> float:
    genera = reference["genus"].to_numpy()
    return 100 * np.mean([hits.get(query, -1) >= 0 and genera[hits[query]] == truth[query] for query in range(len(truth))])


def run_ours(folder: Path, reference: pd.DataFrame, truth: np.ndarray, threads: list[int]) -> list[dict]:
    rows = []
    build = timed(["barcodemae", "index", "build", "reference.parquet", "--output", "index", "--no_progress"],
                  folder / "ours_build.log", 1, folder)  # fmt: skip
    for count in threads:
        found = timed(["barcodemae", "identify", "queries.csv", "--index", "index", "--output", f"ours_{count}.tsv",
                       "--no_progress"], folder / f"ours_identify_{count}.log", count, folder)  # fmt: skip
        calls = pd.read_csv(folder / f"ours_{count}.tsv", sep="\t", keep_default_na=False)
        row_of = {name: row for row, name in enumerate(reference["processid"])}
        hits = {query: row_of[name] for query, name in enumerate(calls["nearest_reference"])}
        rows.append({"tool": "ours (barcodemae index + identify --index)", "threads": count, "build": build,
                     "query": found, "genus": genus_accuracy(hits, reference, truth)})  # fmt: skip
    return rows


def run_vsearch(folder: Path, reference, truth, threads: list[int]) -> list[dict]:
    rows = []
    for count in threads:
        found = timed(["vsearch", "--usearch_global", "queries.fa", "--db", "reference.fa", "--id", "0.5",
                       "--maxaccepts", "10", "--maxrejects", "100", "--top_hits_only", "--threads", str(count),
                       "--blast6out", f"vsearch_{count}.tsv", "--quiet"], folder / f"vsearch_{count}.log", count, folder)  # fmt: skip
        hits = top_hits(folder / f"vsearch_{count}.tsv", 1, 2)
        rows.append({"tool": "VSEARCH --usearch_global", "threads": count, "build": None, "query": found,
                     "genus": genus_accuracy(hits, reference, truth)})  # fmt: skip
    return rows


def run_blast(folder: Path, reference, truth, threads: list[int]) -> list[dict]:
    build = timed(["makeblastdb", "-in", "reference.fa", "-dbtype", "nucl", "-out", "blastdb"], folder / "blast_build.log",
                  1, folder)  # fmt: skip
    rows = []
    for count in threads:
        found = timed(["blastn", "-task", "megablast", "-query", "queries.fa", "-db", "blastdb", "-outfmt",
                       "6 qseqid sseqid bitscore", "-max_target_seqs", "5", "-num_threads", str(count), "-out",
                       f"blast_{count}.tsv"], folder / f"blast_{count}.log", count, folder)  # fmt: skip
        rows.append({"tool": "BLAST megablast", "threads": count, "build": build, "query": found,
                     "genus": genus_accuracy(top_hits(folder / f"blast_{count}.tsv", 1, 2), reference, truth)})  # fmt: skip
    return rows


def run_mmseqs(folder: Path, reference, truth, threads: list[int]) -> list[dict]:
    rows = []
    for count in threads:
        found = timed(["mmseqs", "easy-search", "queries.fa", "reference.fa", f"mmseqs_{count}.m8", f"mmseqs_tmp_{count}",
                       "--search-type", "3", "--threads", str(count)], folder / f"mmseqs_{count}.log", count, folder)  # fmt: skip
        rows.append({"tool": "MMseqs2 easy-search", "threads": count, "build": None, "query": found,
                     "genus": genus_accuracy(top_hits(folder / f"mmseqs_{count}.m8", 1, 11), reference, truth)})  # fmt: skip
    return rows


def profile_ours(folder: Path, queries: list[str]) -> str:
    """Where the time of `identify --index` goes, stage by stage, in this process (one thread)."""
    import torch

    torch.set_num_threads(1)
    from barcodemae.encoders import load_encoder
    from barcodemae.identify import (
        DEFAULT_CANDIDATES, DEFAULT_RELATIVE_CANDIDATES, DEFAULT_RELATIVES_MODEL, DEFAULT_SPECIES_MATCH,
        _rank_by_identity, assign, with_rows_replaced,
    )
    from barcodemae.search.index import load_index

    stages, started = {}, time.perf_counter()

    def stage(name):
        nonlocal started
        stages[name] = time.perf_counter() - started
        started = time.perf_counter()

    index = load_index(folder / "index")
    stage("load the index (file sizes checked; checksums of changed files)")
    encoder, relatives = load_encoder(index.settings["encoder"]["name"]), load_encoder(DEFAULT_RELATIVES_MODEL)
    reference = index.reference(encoder)
    second = index.relatives_reference(relatives, reference)
    stage("encoders and references")
    vectors = encoder.embed(queries)
    stage("embed the queries")
    proposed, _ = reference.nearest(vectors, DEFAULT_CANDIDATES)
    stage("search: compact proposals + exact re-scoring (or exact search)")
    indices, similarities = _rank_by_identity(reference.sequences, queries, proposed, reference.measure, False)
    stage(f"alignment identity of {DEFAULT_CANDIDATES} candidates a query")
    distant = np.flatnonzero(similarities[:, 0] < DEFAULT_SPECIES_MATCH)
    far = [queries[row] for row in distant]
    proposed, _ = second.nearest(relatives.embed(far), DEFAULT_RELATIVE_CANDIDATES)
    stage(f"relatives of the {len(distant)} queries without a species-level match: embed (an exact index: the "
          "references too) and search")
    found = _rank_by_identity(reference.sequences, far, proposed, reference.measure, False)
    stage(f"alignment identity of their {DEFAULT_RELATIVE_CANDIDATES} relative candidates")
    assign(reference, *with_rows_replaced((indices, similarities), distant, found))
    stage("assign")
    return "\n".join(f"| {name} | {seconds:.2f} |" for name, seconds in stages.items())


def accuracy(args) -> None:
    """Exact against compact search (`--search compact`, forced at any size) on the same references and queries, with
    identify's default relatives embedding (stored compact in the compact index, embedded again for the exact one):
    the main file's train against val + val_unseen (`--phase val`, to choose) or test + test_unseen, and with
    `--extra_dir` the extra sets (bench_densities.py's splits and measure)."""
    import tempfile

    from bench_densities import cell, extra_sets, measured

    from barcodemae.encoders import load_encoder
    from barcodemae.identify import (
        DEFAULT_RELATIVES_MODEL, RANKS, Relatives, assign, prefer_species_matches, ranked_neighbours,
    )
    from barcodemae.files import scan_records
    from barcodemae.search.index import build_index

    encoder, relatives = load_encoder("kmer:6"), load_encoder(DEFAULT_RELATIVES_MODEL)
    names = ["val", "val_unseen"] if args.phase == "val" else ["test", "test_unseen"]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sets = {"main": (Path(args.data_file), "train", names)}
        if args.extra_dir and args.phase == "test":
            sets |= extra_sets(Path(args.extra_dir), folder, args.seed)[0]
        print(f"\n| data | queries | n | search | {' | '.join(RANKS)} |\n|---|---|---:|---|" + "---|" * len(RANKS))
        for name, (path, reference_name, query_names) in sets.items():
            splits = load_splits(path, [reference_name, *query_names])
            train = splits[reference_name]
            stored = folder / f"{name}_reference.parquet"  # the prepared split, read as `index build` reads a file
            pd.DataFrame({"processid": list(map(str, range(len(train)))), "dna_barcode": train.sequences}
                         | {rank: train.labels[rank] for rank in RANKS}).to_parquet(stored, index=False)  # fmt: skip
            scan = lambda: scan_records([stored], label_columns=RANKS, deduplicate=True)  # noqa: E731
            for search in ("exact", "compact"):
                index = build_index(folder / f"{name}_{search}", encoder, scan, "overlap", search=search,
                                    relatives=relatives)  # fmt: skip
                reference = index.reference(encoder)
                second = index.relatives_reference(relatives, reference)
                for split in (splits[query] for query in query_names):
                    ranked = ranked_neighbours(reference, encoder.embed(split.sequences), split.sequences)
                    ranked = prefer_species_matches(reference, ranked, Relatives(second, relatives.embed(split.sequences)),
                                                    split.sequences)  # fmt: skip
                    table = assign(reference, *ranked)
                    cells = [cell(measured(split.labels[rank], train.labels[rank], table[f"{rank}_best_hit"].to_numpy(),
                                           table[rank].to_numpy())) for rank in RANKS]  # fmt: skip
                    print(f"| {name} | {split.name} | {len(split)} | {search} | {' | '.join(cells)} |", flush=True)


def plot(rows: list[dict], path: Path) -> None:
    """Log-log, one thread: seconds of the 300 queries (and of a separate index build, dashed) and peak memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame([{"tool": row["tool"], "size": row["size"], "query": row["query"]["seconds"],
                           "build": row["build"]["seconds"] if row["build"] else np.nan,
                           "peak": max(row["query"]["peak_mib"], row["build"]["peak_mib"] if row["build"] else 0.0)}
                          for row in rows if row["threads"] == 1]).sort_values("size")  # fmt: skip
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for number, (tool, part) in enumerate(frame.groupby("tool")):
        colour = f"C{number}"
        axes[0].plot(part["size"], part["query"], marker="o", color=colour, label=f"{tool}: 300 queries")
        if part["build"].notna().any():
            axes[0].plot(part["size"], part["build"], marker="s", ls="--", color=colour, label=f"{tool}: index build")
        axes[1].plot(part["size"], part["peak"], marker="o", color=colour, label=tool)
    for axis, label in zip(axes, ("seconds, 1 thread, start-up included", "peak memory (MiB), build or query")):
        axis.set(xscale="log", yscale="log", xlabel="reference barcodes (beyond 15,821: synthetic relatives)", ylabel=label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def rows_from_logs(paths: list[str]) -> list[dict]:
    """The measurements of `table_line` rows in earlier runs' logs (to plot runs made in parts)."""
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if len(cells) != 8 or not cells[0].isdigit():
                continue
            build = re.fullmatch(r"([\d.]+) s, (\d+) MiB", cells[3])
            rows.append({"size": int(cells[0]), "tool": cells[1], "threads": int(cells[2]),
                         "build": {"seconds": float(build[1]), "peak_mib": float(build[2])} if build else None,
                         "query": {"seconds": float(cells[4]), "peak_mib": float(cells[6])}, "genus": float(cells[7])})  # fmt: skip
    return rows


def table_line(row: dict) -> str:
    build = f"{row['build']['seconds']:.1f} s, {row['build']['peak_mib']:.0f} MiB" if row["build"] else "-"
    query = row["query"]
    return (f"| {row['size']} | {row['tool']} | {row['threads']} | {build} | {query['seconds']:.1f} | "
            f"{300 / query['seconds'] if query['seconds'] else 0:.1f} | {query['peak_mib']:.0f} | {row['genus']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--sizes", type=int, nargs="+", default=[15821, 100000, 1000000],
                        help="reference sizes (the shared file's train: 15,821 real barcodes)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tools", nargs="+", default=["ours", "vsearch", "blast", "mmseqs"])
    parser.add_argument("--blast_max", type=int, default=20000, help="BLAST only up to this reference size")
    parser.add_argument("--mmseqs_max", type=int, default=100000, help="MMseqs2 only up to this reference size")
    parser.add_argument("--two_threads_max", type=int, default=20000,
                        help="the 2-thread point of BLAST and MMseqs2 only up to this size (ours, VSEARCH: every size)")
    parser.add_argument("--profile", action="store_true", help="stages of ours at the largest size")
    parser.add_argument("--keep", action="store_true", help="keep the files, the index and the databases of each size")
    parser.add_argument("--out", default="results/index_scale")
    parser.add_argument("--plot", default="docs/index_scale.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot_from", nargs="+", default=None, help="only plot the tables of these logs into --plot")
    parser.add_argument("--accuracy", action="store_true", help="exact against compact search instead (see accuracy)")
    parser.add_argument("--phase", choices=("val", "test"), default="test", help="with --accuracy")
    parser.add_argument("--extra_dir", default=None, help="with --accuracy: ../shared/data/extra")
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    if args.plot_from:
        plot(rows_from_logs(args.plot_from), Path(args.plot))
        return
    if args.accuracy:
        import torch

        torch.set_num_threads(1)
        print(f"data {args.data_file}, extra {args.extra_dir}, phase {args.phase}; CPU {cpu_description()}")
        accuracy(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"data {args.data_file}; CPU {cpu_description()} (2 cores shared with other jobs: read ratios); "
          f"synthetic relatives beyond the real train barcodes", flush=True)
    splits = load_splits(args.data_file, ["train", "test_unseen"])
    pick = np.sort(np.random.default_rng(args.seed).permutation(len(splits["test_unseen"]))[: args.queries])
    queries = [splits["test_unseen"].sequences[row] for row in pick]
    truth = splits["test_unseen"].labels["genus"][pick]
    print("\n| references | tool | threads | index build | query seconds | queries/s | query peak MiB | genus % |\n"
          "|---:|---|---:|---|---:|---:|---:|---:|", flush=True)  # fmt: skip
    rows = []
    for size in args.sizes:
        folder = (out / f"size_{size}").resolve()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        reference = reference_frame(splits["train"], size, args.seed)
        reference.to_parquet(folder / "reference.parquet", index=False)
        write_fasta(folder / "reference.fa", list(reference["dna_barcode"]))
        pd.DataFrame({"processid": [f"q{row}" for row in range(len(queries))], "dna_barcode": queries}).to_csv(
            folder / "queries.csv", index=False)
        write_fasta(folder / "queries.fa", queries)
        reference = reference[["processid", "genus"]]  # the barcodes are in the files now (5M of them: gigabytes)
        runs = {"ours": (run_ours, True), "vsearch": (run_vsearch, have("vsearch")),
                "blast": (run_blast, have("blastn", "makeblastdb") and size <= args.blast_max),
                "mmseqs": (run_mmseqs, have("mmseqs") and size <= args.mmseqs_max)}  # fmt: skip
        for tool in args.tools:
            run, ready = runs[tool]
            if not ready:
                print(f"| {size} | {tool} | skipped (not on PATH, or above --{tool}_max) |", flush=True)
                continue
            threads = args.threads if tool in ("ours", "vsearch") or size <= args.two_threads_max else args.threads[:1]
            for row in run(folder, reference, truth, threads):
                row["size"] = size
                rows.append(row)
                print(table_line(row), flush=True)
        if args.profile and "ours" in args.tools and size == args.sizes[-1]:
            print(f"\nWhere the time of ours goes at {size} references (one thread, in-process):\n\n"
                  f"| stage | seconds |\n|---|---:|\n{profile_ours(folder, queries)}", flush=True)
        for leftover in [] if args.keep else folder.iterdir():  # only the logs stay
            if leftover.suffix != ".log":
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    plot(rows, Path(args.plot))
    print(f"\nplot: {args.plot}", flush=True)


if __name__ == "__main__":
    main()
