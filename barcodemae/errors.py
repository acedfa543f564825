"""User errors: one `error:` line on stderr and a non-zero exit, never a traceback.

    from barcodemae.errors import UserError, run_main

    def main(argv=None) -> int:
        ...
        raise UserError(f"{path}: row {row}, column 'dna_barcode': ...")

    if __name__ == "__main__":
        sys.exit(run_main(main))
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

EXIT_USER_ERROR = 2  # argparse's status for bad usage


class UserError(ValueError):
    """A problem with what the user gave (a file, a column, a value, an option), stated so they can fix it."""


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


# What a command reports as a user error. FileNotFoundError is included for the ones that libraries raise about
# paths the user named (e.g. `from_pretrained` on a missing folder).
USER_ERRORS = (UserError, FileNotFoundError)


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call `main(argv)`; a user error becomes `error: <message>` on stderr and exit status 2."""
    try:
        return main(argv) or 0
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
