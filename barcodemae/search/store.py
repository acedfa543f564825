"""An index folder as files: safetensors tensors (written in a stream, read memory-mapped), a generation's files, and
`manifest.json`, written last (atomically): the generation and each file's size and SHA-256, checked by
`read_manifest` (`VERIFIED` records what matched, so that only files changed since are hashed again).

And the trust checks, in one place: an index folder is data, not authority. Its manifest names only its own files
(`checked_files`, `inside`); a link planted in it is replaced, never written through (`_fresh`); one writer at a time
holds its lock (`writing`); the model its settings name loads only where the user could not have meant another
(`index_model`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from barcodemae.errors import UserError, UserFileNotFoundError

FORMAT = "barcodemae-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VERIFIED = ".verified.json"  # the listed files' states when their checksums last matched (`read_manifest`)
LOCK = ".lock"  # what `index add` locks while it writes (`writing`)
PARTS = {"vectors": "safetensors", "relatives": "safetensors", "sequences": "safetensors", "records": "parquet",
         "settings": "json"}  # a generation's files, in the manifest's order, and their extensions  # fmt: skip
REQUIRED_PARTS = ("vectors", "sequences", "records", "settings")
_SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "uint8": "U8", "uint16": "U16", "int64": "I64",
                       "uint64": "U64"}  # fmt: skip
_NUMPY_DTYPES = {code: name for name, code in _SAFETENSORS_DTYPES.items()}


# ---- files: safetensors written in a stream and read memory-mapped; hashes ----


def write_tensors(path: Path, tensors: dict[str, Sequence[np.ndarray]], rows_per_write: int = 65536) -> None:
    """A safetensors file of tensors given as parts to concatenate along the first axis, written part by part (no
    tensor is ever assembled in memory)."""
    header, offset = {}, 0
    for name, parts in tensors.items():
        rows = sum(len(part) for part in parts)
        size = sum(part.nbytes for part in parts)
        dtype = _SAFETENSORS_DTYPES[np.dtype(parts[0].dtype).name]
        header[name] = {"dtype": dtype, "shape": [rows, *parts[0].shape[1:]], "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for parts in tensors.values():
            for part in parts:
                for start in range(0, len(part), rows_per_write):
                    file.write(np.ascontiguousarray(part[start : start + rows_per_write]).data)


def map_tensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only memory maps."""
    with open(path, "rb") as file:
        size = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(size))
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = np.dtype(_NUMPY_DTYPES[entry["dtype"]]), tuple(entry["shape"])
        start, end = entry["data_offsets"]
        tensors[name] = (np.memmap(path, dtype, "r", offset=8 + size + start, shape=shape) if end > start
                         else np.empty(shape, dtype))  # fmt: skip
    return tensors


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


# ---- trust: an index folder is data; it names no file outside itself and no code or weights to load ----


def part_file_name(part: str, generation: int) -> str:
    """The file name of a generation's part: `vectors.2.safetensors`."""
    return f"{part}.{generation}.{PARTS[part]}"


def checked_files(folder: Path, manifest: dict) -> dict[str, Path]:
    """The path of each part that `manifest` lists, once each entry is checked to be the plain file name this
    version writes for it (`part_file_name` at the manifest's generation) and not a link to outside `folder`: one
    error naming any other entry (an absolute path, `..`, a separator, another shape), so that no command reads,
    writes or deletes outside the folder because of what its manifest says."""
    generation, files = manifest.get("generation"), manifest["files"]
    if type(generation) is not int or generation < 1:
        raise UserError(f"{folder}: {MANIFEST} gives generation {generation!r}, not a whole number from 1; refused")
    for part in REQUIRED_PARTS:
        if part not in files:
            raise UserError(f"{folder}: not a complete barcodemae index: {MANIFEST} lists no {part} file; rebuild it")
    paths = {}
    for part, entry in files.items():
        name = entry.get("name") if isinstance(entry, dict) else entry
        expected = part_file_name(part, generation) if part in PARTS else None
        if name != expected:
            wanted = f"not {expected}" if expected else f"not a part of an index ({', '.join(PARTS)})"
            raise UserError(f"{folder}: {MANIFEST} entry {part!r} names {name!r}, {wanted}: an index lists only "
                            "its own files; refused")  # fmt: skip
        paths[part] = inside(folder, name)
    return paths


def inside(folder: Path, name: str) -> Path:
    """`folder / name`, refused (one error) where a link makes it resolve outside `folder`."""
    path = folder / name
    target = path.resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UserError(f"{folder}: {name} links to {target}, outside the index folder; refused")
    return path


def _fresh(path: Path) -> Path:
    """`path`, once whatever was there is removed: a link planted in the folder is removed, never written through."""
    path.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def writing(folder: Path):
    """Hold the write lock of the index in `folder`: an exclusive `flock` on `folder/LOCK`, removed when done. The
    system drops a flock when its process ends, however it ends: a killed writer leaves at most an unlocked file,
    which the next writer takes over, so a stale lock never blocks. A second writer meanwhile gets one error."""
    import fcntl

    path = folder / LOCK
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as error:  # a read-only folder; a link in place of the lock (not followed)
        raise UserError(f"{path}: cannot open the index's lock to write the index ({error.strerror})") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(descriptor).st_ino != os.stat(path, follow_symlinks=False).st_ino:
            raise BlockingIOError  # its holder removed it as this one opened it: it was writing just now
    except (BlockingIOError, FileNotFoundError):
        os.close(descriptor)
        raise UserError(f"{path}: another barcodemae index add holds this lock, writing the index; run this one "
                        "again when it has finished") from None  # fmt: skip
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a writer that opened it meanwhile sees it gone
        os.close(descriptor)


def index_model(folder: Path, stored: dict, given: str | None, option: str) -> tuple[str, str | None]:
    """How a model that an index's settings name (`stored`: the encoder's or the relatives' entry) may load: (spec,
    Hub revision). `given` (the user's `option`): that one, at the stored revision where it is the stored name. Else
    the stored name only where every part of it is `kmer:K`, `aa:K` or the package's bundled model (its copy in
    `BUNDLED_MODEL`); any other is refused, one error asking for `option`: an index never chooses code or weights to
    load. The weights are then checked against the stored fingerprint (`ReferenceIndex.check_encoder`)."""
    from barcodemae.encoders import BUNDLED_MODEL, non_learned_encoder, spec_parts

    name = stored["name"]
    if given is not None:
        return given, stored.get("revision") if given == name else None
    trusted = [part if non_learned_encoder(part) is not None else
               str(BUNDLED_MODEL) if Path(part).name == BUNDLED_MODEL.name and BUNDLED_MODEL.is_dir() else None
               for part in spec_parts(name)]  # fmt: skip
    if None in trusted:
        raise UserError(f"{folder}: the index was built with model {name!r}, which only {option} loads: an index "
                        f"does not choose the code or weights to run; give {option} {name} if you trust it")
    return "+".join(trusted), None


# ---- the manifest: checks, generations ----


def read_manifest(folder: str | os.PathLike, verify: str = "changed") -> dict:
    """The folder's manifest, after checking its entries (`checked_files`) and every file it lists against its size
    and, by `verify`, its SHA-256: "changed" (the default) where a file changed (size, mtime, ctime, inode) since its
    checksum last matched (the quick check of rsync; the record of what matched is `VERIFIED` in the folder, when it
    is writable), "all", or "none". One clear error for a folder that is not a whole index."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserFileNotFoundError(f"{folder}: no such index folder (make one with barcodemae index build)")
    problem, path = f"{folder}: not a complete barcodemae index", inside(folder, MANIFEST)
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"] = dict(manifest["files"])
        if manifest.get("format") != FORMAT:
            raise UserError(f"{problem}: {MANIFEST} is not a {FORMAT} manifest")
    except FileNotFoundError:
        raise UserError(f"{problem}: no {MANIFEST} (a build that did not finish?); rebuild it") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{problem}: {MANIFEST} is unreadable ({error}); rebuild it") from None
    if manifest.get("version") != FORMAT_VERSION:
        raise UserError(f"{folder}: index format {manifest.get('version')}, this version reads {FORMAT_VERSION}")
    for part, path in checked_files(folder, manifest).items():
        entry = files[part]
        if not path.is_file():
            raise UserError(f"{problem}: {entry['name']} is missing; rebuild it")
        if path.stat().st_size != entry.get("bytes"):
            raise UserError(f"{problem}: {entry['name']} has {path.stat().st_size} bytes, the manifest says "
                            f"{entry.get('bytes')} (truncated?); rebuild it")  # fmt: skip
    if verify == "all" or (verify == "changed" and _file_states(folder, manifest) != _verified_states(folder)):
        for entry in files.values():
            if _sha256(folder / entry["name"]) != entry.get("sha256"):
                raise UserError(f"{problem}: {entry['name']} does not match its checksum (corrupted); rebuild it")
        remember_verified(folder, manifest)
    return manifest


def _file_states(folder: Path, manifest: dict) -> dict:
    """What the quick check compares: each listed file's size, mtime, ctime and inode."""
    states = {}
    for entry in manifest["files"].values():
        found = (folder / entry["name"]).stat()
        states[entry["name"]] = [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino]
    return states


def _verified_states(folder: Path) -> dict | None:
    """The states `remember_verified` recorded (None: none, or a link, which is not followed)."""
    try:
        with open(os.open(folder / VERIFIED, os.O_RDONLY | os.O_NOFOLLOW)) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def remember_verified(folder: Path, manifest: dict) -> None:
    """Record that the files of `manifest` match their checksums as they are now (skipped where the folder is
    read-only: every load then checks them again)."""
    temporary = folder / f".{VERIFIED}.tmp"
    try:
        _fresh(temporary).write_text(json.dumps(_file_states(folder, manifest)))
        os.replace(temporary, folder / VERIFIED)
    except OSError:
        temporary.unlink(missing_ok=True)


def write_generation(folder: Path, generation: int, parts: dict, settings: dict) -> dict:
    """Write one generation's files into `folder`; their manifest entries."""
    return write_settings(folder, generation, write_data(folder, generation, parts), settings)


def write_data(folder: Path, generation: int, parts: dict) -> dict[str, str]:
    """Write one generation's data files into `folder` (`parts`: the tensors of vectors, relatives and sequences,
    the records' columns), a block at a time; their names by part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = {part: part_file_name(part, generation) for part in PARTS if part in parts}
    for part, name in names.items():
        if part == "records":
            pq.write_table(pa.table(parts[part]), _fresh(folder / name))
        else:
            write_tensors(_fresh(folder / name), parts[part])
    return names


def write_settings(folder: Path, generation: int, names: dict[str, str], settings: dict) -> dict:
    """Write the settings of the generation whose data files are `names`; the manifest entries of all its files."""
    names = names | {"settings": part_file_name("settings", generation)}
    _fresh(folder / names["settings"]).write_text(json.dumps(settings, indent=1))
    return {part: {"name": name, "bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
            for part, name in names.items()}  # fmt: skip


def write_manifest(folder: Path, generation: int, files: dict) -> None:
    """The manifest of just-written `files` (hashed as they were written, so also recorded as verified)."""
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "generation": generation, "files": files}
    temporary = folder / f".{MANIFEST}.tmp"
    _fresh(temporary).write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, folder / MANIFEST)
    remember_verified(folder, manifest)
