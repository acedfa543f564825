"""Searching reference barcodes, and the saved index that holds them (`barcodemae index`, `identify --index`); one job
a module:
- `references`: what `identify` searches (`Reference`: vectors, labels, thresholds, barcodes; exact cosine), and an
  index's two other searches (`CompactReference`, `EmbeddedReference`);
- `projection`: the search vectors: a reference's own, or their seeded randomized-SVD projection (`--search`);
- `packing`: barcodes stored 4 bits a nucleotide, and the hash that recognises each;
- `store`: an index folder as files (safetensors, the manifest and its checksums) and its trust checks: a folder is
  data, not authority;
- `index`: the folder's lifecycle: build, add, load (`ReferenceIndex`).

The kernel under them, exact cosine nearest neighbours, is `barcodemae.neighbours`: clustering, training batches and
the probes search with it too.
"""
