"""User errors: one `error:` line on stderr and a non-zero exit, never a traceback.

    from barcodemae.errors import Option, UserError, run_main

    def main(argv=None) -> int:
        ...
        raise UserError(f"{path}: row {row}, column 'dna_barcode': ...; fix the file", " or skip it with ",
                        Option("on_bad_sequence", "skip"))

    if __name__ == "__main__":
        sys.exit(run_main(main))

A message names the options that would get past it as `Option`s, not as text: each surface spells them its own way
(`python_spelling`: `on_bad_sequence='skip'`; `command_line_spelling`: `--on_bad_sequence skip`; the demo page: its
control), and leaves out the remedy where it has no such option.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, Collection, Sequence

EXIT_USER_ERROR = 2  # argparse's status for bad usage


@dataclass(frozen=True)
class Option:
    """An option that a message names: `name` is the Python parameter, `value` a setting of it (None: the option)."""

    name: str
    value: str | None = None


Spelling = Callable[[Option], "str | None"]  # how a surface names an option; None: it has no such option


def python_spelling(option: Option) -> str:
    """The library's spelling: `sequence_column`, `on_bad_sequence='skip'`."""
    return option.name if option.value is None else f"{option.name}={option.value!r}"


def command_line_spelling(options: Collection[str] | None = None) -> Spelling:
    """A command line's spelling: `--sequence_column`, `--on_bad_sequence skip`; `options`: the (Python) names of the
    options the command has (None: every one), others are left out. `options` is read when a message is spelled."""

    def spell(option: Option) -> str | None:
        if options is not None and option.name not in options:
            return None
        return f"--{option.name}" + ("" if option.value is None else f" {option.value}")

    return spell


class UserError(ValueError):
    """A problem with what the user gave (a file, a column, a value, an option), stated so they can fix it.

    `UserError(message, *remedy)`: `remedy` (text and `Option`s) follows the message on a surface that has every option
    it names (`spelled`); `str(error)` is the library's spelling.
    """

    def __init__(self, message: str, *remedy: str | Option):
        super().__init__(message, *remedy)
        self.message, self.remedy = message, remedy

    def spelled(self, spelling: Spelling = python_spelling) -> str:
        """The message, with its remedy where `spelling` names each of its options."""
        parts = [spelling(part) if isinstance(part, Option) else part for part in self.remedy]
        return self.message if None in parts else self.message + "".join(parts)

    def __str__(self) -> str:
        return self.spelled()


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


# What a command reports as a user error. FileNotFoundError is included for the ones that libraries raise about
# paths the user named (e.g. `from_pretrained` on a missing folder).
USER_ERRORS = (UserError, FileNotFoundError)


def error_text(error: BaseException, spelling: Spelling = python_spelling) -> str:
    """What a surface shows of a user error: a `UserError` spelled its way, anything else as it is."""
    return error.spelled(spelling) if isinstance(error, UserError) else str(error)


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
             spelling: Spelling | None = None) -> int:  # fmt: skip
    """Call `main(argv)`; a user error becomes `error: <message>` on stderr (options spelled by `spelling`, by default
    as flags: `command_line_spelling()`) and exit status 2."""
    try:
        return main(argv) or 0
    except USER_ERRORS as error:
        print(f"error: {error_text(error, spelling or command_line_spelling())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
