"""BarcodeMAE demo: identify insect COI barcodes in the browser, against a reference bundled with the toolkit.

    pip install -e ".[demo]"              # in a clone of the repository (torch==2.13.0 first, see README)
    python space/app.py                   # http://127.0.0.1:7860; --model FOLDER_OR_HUB_ID, --port N

A thin page over the toolkit: `barcodemae.encoders.load_encoder` loads the model (a BarcodeMAE folder through the
package's own classes), `barcodemae.files` reads and checks the barcodes, `barcodemae.identify` calls the
taxa, as `barcodemae identify QUERIES --reference FIXTURE --reference_splits train --model MODEL` does (with its
default relatives embedding, amino-acid 3-mers). The reference is embedded and calibrated once, at start-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the toolkit beside this folder: a clone, or the Space's copy (space/push_to_hub.py)

import gradio as gr  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from barcodemae.data import FIXTURE, SKIP_BAD  # noqa: E402
from barcodemae.encoders import load_encoder  # noqa: E402
from barcodemae.errors import USER_ERRORS, Option, UserError, command_line_spelling, error_text  # noqa: E402
from barcodemae.files import read_records, read_selected, scan_records, write_embeddings, write_table  # noqa: E402
from barcodemae.identify import DEFAULT_RELATIVES_MODEL, RANKS, Relatives, identify  # noqa: E402
from barcodemae.model_card import IDENTIFY_COMPARISON, MODEL_ID  # noqa: E402
from barcodemae.search.references import Reference  # noqa: E402

DEFAULT_MODEL = ROOT / "checkpoints" / "barcodemae-4x256-bold"  # shipped in the clone and uploaded with the Space
REFERENCE_SPLITS = ("train",)  # the bundled fixture's labelled reference (455 distinct barcodes)
MAX_QUERIES = 1000  # per run: about 30 s on two CPU cores; more is a job for `barcodemae identify`
EXAMPLE_IDS = ("AGIRI262-17", "BBDCP593-10")  # Aedes aegypti (in the reference), Aedes vexans (not in it)
PLAIN_HEADER = "query"  # pasted barcodes without FASTA headers are named query_1, query_2, ...
SKIP_LABEL = "Skip bad barcodes"  # the page's control for what the toolkit calls on_bad_sequence="skip"

INTRODUCTION = f"""# BarcodeMAE: identify insect COI barcodes

Paste DNA barcodes (COI-5P, the ~658 bp Folmer region; FASTA or one barcode per line) or upload a file (FASTA, CSV,
TSV or parquet with a `dna_barcode`, `nucleotides` or `sequence` column), then press **Identify**. At most
{MAX_QUERIES:,} barcodes per run.

How it works: the BarcodeMAE model ([`{MODEL_ID}`](https://huggingface.co/{MODEL_ID})) proposes each barcode's 50
nearest reference barcodes, alignment identity ranks them and decides the call, as `barcodemae identify --model` does.
A rank gets no call (an abstention) when the best hit is less alike than the reference's own barcodes of one taxon
usually are (the threshold in the table). With the bundled reference ({{reference}}: a demo, not BOLD) a barcode of a
species it lacks should get a genus, not a species. {IDENTIFY_COMPARISON} (`kmer:6`, 6-mer counts, is the
command line's default retriever.) The model card compares the model with an untrained encoder too."""


def pasted_file(text: str, folder: Path) -> Path:
    """The pasted barcodes as a file in `folder` for the toolkit's reader, so that its messages point into the box:
    FASTA as pasted (a record's line is the box's line), else one barcode per non-empty line as a one-column table
    (its row N is the Nth barcode; `read_queries` names it query_N)."""
    lines = text.splitlines()
    barcodes = [line.strip() for line in lines if line.strip()]
    if not barcodes:
        raise UserError("no barcode: paste one or more (FASTA, or one per line) or upload a file")
    if barcodes[0].startswith(">"):
        path = folder / "pasted.fasta"
        path.write_text("".join(f"{line}\n" for line in lines))
    else:
        path = folder / "pasted.tsv"
        path.write_text("".join(f"{line}\n" for line in ["sequence", *barcodes]))
    return path


def page_spelling(option: Option) -> str | None:
    """How the page names an option in a message: by its control (None: the page has none, the message leaves out the
    remedy that needs it)."""
    return f"the '{SKIP_LABEL}' box" if option == SKIP_BAD else None


def _call_text(table: pd.DataFrame, rank: str, threshold: float) -> list[str]:
    """Per query: the call with its identity, or the abstention with the best hit and why."""
    calls, hits, similarities = table[rank], table[f"{rank}_best_hit"], table[f"{rank}_similarity"]
    return [f"{call} ({similarity:.3f})" if call else
            (f"no call: best hit {hit}, {similarity:.3f} < {threshold:.3f}" if hit else "no call: no labelled hit")
            for call, hit, similarity in zip(calls, hits, similarities)]  # fmt: skip


class Demo:
    """The model and the reference, embedded and calibrated once; `run` identifies what a visitor gives."""

    def __init__(self, model: str | Path = DEFAULT_MODEL):
        self.encoder = load_encoder(str(model), device="cpu")
        self.reference_records = read_records(FIXTURE, REFERENCE_SPLITS, label_columns=RANKS, deduplicate=True,
                                              min_run=self.encoder.min_run)  # fmt: skip
        vectors = self.encoder.embed(self.reference_records.sequences)
        self.reference = Reference.calibrated(vectors, self.reference_records.labels, self.reference_records.sequences)
        self.relatives_encoder = load_encoder(DEFAULT_RELATIVES_MODEL)
        self.relatives = self.reference.with_vectors(self.relatives_encoder.embed(self.reference_records.sequences))
        self.map_centre, self.map_axes = self._principal_axes(vectors)
        self.reference_map = self._project(vectors)

    @staticmethod
    def _principal_axes(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre = vectors.mean(0)
        return centre, np.linalg.svd(vectors - centre, full_matrices=False)[2][:2]

    def _project(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.map_centre) @ self.map_axes.T

    def read_queries(self, text: str, upload: str | None, folder: Path, skip: bool = False):
        """The barcodes of the upload, else of the pasted text, checked by the toolkit's reader (bad ones skipped with
        `skip`), and how many were skipped; errors name the pasted record or the uploaded file, not a temporary path,
        and the page's controls, not the toolkit's options."""
        if upload:
            path, shown = Path(upload), Path(upload).name
        else:
            path, shown = pasted_file(text or "", folder), "pasted barcodes"
        try:
            selection = scan_records([path], min_run=self.encoder.min_run, on_bad_sequence="skip" if skip else "error")
            records = read_selected(selection)
        except USER_ERRORS as error:
            raise UserError(error_text(error, page_spelling).replace(str(path), shown)) from None
        if not upload and path.suffix == ".tsv":  # ids are the rows: the barcodes' numbers
            records.ids = [f"{PLAIN_HEADER}_{row}" for row in records.ids]
        if len(records) > MAX_QUERIES:
            raise UserError(f"{shown}: {len(records):,} barcodes; this demo identifies at most {MAX_QUERIES:,} per run "
                            "(split them, or run `barcodemae identify` on your machine)")  # fmt: skip
        return records, selection.skipped

    def run(self, text: str, upload: str | None, skip: bool = False, progress=gr.Progress(track_tqdm=True)):
        """(message, calls shown, calls.tsv, embeddings.parquet, map): the page's outputs; bad input: a message.
        `skip`: the page's "Skip bad barcodes" box."""
        folder = Path(tempfile.mkdtemp(prefix="barcodemae-demo-"))
        try:
            progress(0.0, desc="reading the barcodes")
            queries, skipped = self.read_queries(text, upload, folder, skip)
        except USER_ERRORS as error:
            return f"**error:** {error}", None, None, None, None
        progress(0.1, desc="embedding")
        vectors = self.encoder.embed(queries.sequences, progress="embedding")
        progress(0.2, desc="aligning to the nearest references")
        relatives = Relatives(self.relatives, self.relatives_encoder.embed(queries.sequences))
        table = identify(self.reference, vectors, query_sequences=queries.sequences, progress=True, relatives=relatives)
        table.insert(0, "query", queries.ids)
        table["nearest_reference"] = [self.reference_records.ids[index] for index in table["nearest_reference"]]
        shown = pd.DataFrame({"query": table["query"], "nearest reference": table["nearest_reference"],
                              "identity": table["nearest_similarity"].astype(float).round(3)})  # fmt: skip
        for rank in RANKS:
            shown[rank] = _call_text(table, rank, self.reference.thresholds[rank])
        summary = ", ".join(f"{rank} {(table[rank] != '').sum()}" for rank in RANKS)
        message = f"{len(queries)} barcodes identified against {len(self.reference_records)} reference barcodes; called: {summary}."
        message += f" {skipped} bad barcode{'s' if skipped != 1 else ''} skipped." if skipped else ""
        calls = write_table(folder / "calls.tsv", table)
        embeddings = write_embeddings(folder / "embeddings.parquet", queries.ids, vectors)[0]
        return message, shown, str(calls), str(embeddings), self.figure(vectors, queries.ids)

    def figure(self, vectors: np.ndarray, ids: list[str]) -> Figure:
        """The queries (black stars) among the reference barcodes, coloured by order, on the reference's first two
        principal axes of the model's embedding."""
        figure = Figure(figsize=(7, 5), layout="constrained")
        axes = figure.subplots()
        orders = self.reference.labels["order"]
        for order in sorted(set(orders) - {""}):
            points = self.reference_map[orders == order]
            axes.scatter(points[:, 0], points[:, 1], s=8, alpha=0.5, label=order)
        placed = self._project(vectors)
        axes.scatter(placed[:, 0], placed[:, 1], marker="*", s=160, c="black", label="your barcodes")
        for (x, y), name in list(zip(placed, ids))[:20]:
            axes.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
        axes.set(xlabel="principal axis 1", ylabel="principal axis 2",
                 title="Your barcodes among the reference (coloured by order)")  # fmt: skip
        axes.legend(fontsize=8, markerscale=1.5)
        return figure

    def describe_reference(self) -> str:
        labels = self.reference.labels
        return (f"{len(self.reference_records)} distinct barcodes of {len(set(labels['genus']) - {''})} insect genera "
                f"in {len(set(labels['order']) - {''})} orders")

    def examples(self) -> str:
        """Two fixture barcodes as FASTA (`EXAMPLE_IDS`), for the Example button."""
        records = read_records(FIXTURE, min_run=self.encoder.min_run)
        sequences = dict(zip(records.ids, records.sequences))
        return "".join(f">{name}\n{sequences[name]}\n" for name in EXAMPLE_IDS)


def build(demo: Demo) -> gr.Blocks:
    with gr.Blocks(title="BarcodeMAE: identify COI barcodes") as page:
        gr.Markdown(INTRODUCTION.format(reference=demo.describe_reference()))
        with gr.Row():
            text = gr.Textbox(label="Barcodes (FASTA or one per line)", lines=8, elem_id="barcodes",
                              placeholder=">my_specimen\nAACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGA...")  # fmt: skip
            upload = gr.File(label="or a file", file_types=[".fasta", ".fa", ".fas", ".csv", ".tsv", ".txt", ".parquet",
                                                             ".gz"], type="filepath")  # fmt: skip
        with gr.Row():
            example = gr.Button("Example: two fixture barcodes")
            skip = gr.Checkbox(label=SKIP_LABEL, value=False, elem_id="skip",
                               info="leave out barcodes that cannot be read or embedded, and say how many")
            button = gr.Button("Identify", variant="primary", elem_id="identify")
        message = gr.Markdown(elem_id="message")
        calls = gr.Dataframe(label="Identification (identity of the nearest reference carrying each call)",
                             elem_id="calls", wrap=True)  # fmt: skip
        with gr.Row():
            tsv = gr.File(label="calls.tsv (every column of barcodemae identify)")
            embeddings = gr.File(label="embeddings.parquet (id, embedding)")
        plot = gr.Plot(label="Map")
        example.click(demo.examples, outputs=text, api_name="example")
        button.click(demo.run, inputs=[text, upload, skip], outputs=[message, calls, tsv, embeddings, plot],
                     api_name="identify")  # fmt: skip
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="a model folder or Hub id (default: the shipped checkpoint)")
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT, else 7860")
    args = parser.parse_args(argv)
    try:
        demo = Demo(args.model)
    except USER_ERRORS as error:
        sys.exit(f"error: {error_text(error, command_line_spelling(vars(args)))}")
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])  # no web fonts
    build(demo).queue(default_concurrency_limit=1).launch(server_port=args.port, theme=theme)


if __name__ == "__main__":
    main()
