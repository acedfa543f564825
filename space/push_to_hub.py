"""Upload the demo Space: the app with the toolkit it runs on and the shipped checkpoint, in one commit.

    python space/push_to_hub.py            # after `hf auth login` with a write token; --space_id OWNER/NAME

The Space keeps the repository's layout (its README.md header runs space/app.py): barcodemae/ (with the bundled
fixture), the three Hub files, checkpoints/barcodemae-4x256-bold/ and space/app.py; space/README.md and
space/requirements.txt become the Space's README.md and requirements.txt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from barcodemae.model_card import SPACE_ID  # noqa: E402

UPLOADED = ("space/app.py", "barcodemae/**/*.py", "barcodemae/bioscan_fixture.csv.gz", "*_barcodemae.py",
            "checkpoints/barcodemae-4x256-bold/*")  # fmt: skip
AT_THE_TOP = {"README.md": "space/README.md", "requirements.txt": "space/requirements.txt"}


def space_files(root: Path = ROOT) -> dict[str, Path]:
    """Path in the Space -> local file."""
    files = {path.relative_to(root).as_posix(): path for pattern in UPLOADED for path in sorted(root.glob(pattern))}
    return files | {name: root / source for name, source in AT_THE_TOP.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space_id", default=SPACE_ID)
    args = parser.parse_args()
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    api.create_repo(args.space_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    operations = [CommitOperationAdd(name, str(path)) for name, path in space_files().items()]
    commit = api.create_commit(args.space_id, operations, commit_message="BarcodeMAE demo (space/push_to_hub.py)",
                               repo_type="space")  # fmt: skip
    print(f"{len(operations)} files: {commit.commit_url}")


if __name__ == "__main__":
    main()
