"""barcodemae: DNA barcode embeddings, taxonomic assignment and BIN-like clustering, on the command line and in Python.

Modules: `data` (reading and preparing barcode files), `encoders` (kmer:K and any AutoModel), `cache`, `neighbours`,
`identify`, `search` (what `identify` searches, and the saved index), `clustering`, `protocol` (the BIOSCAN-5M
frozen-feature evaluation), `convert`, `files`, `errors`, `cli`.
The Hub model code (alphabet/configuration/tokenization/modeling_barcodemae.py) stays flat beside this package.
"""
