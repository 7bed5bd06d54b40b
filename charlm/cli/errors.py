"""The command line's own errors: a message for the person at the keyboard, said in one line, exit status 2."""

from charlm.errors import UserError


class OwnError(UserError):
    """A problem of one process of a torchrun run alone (its GPU's memory): every process says its own.
    Other errors are the same in every process (the same command, files and settings): rank 0 alone says them."""


def not_a_file(given: str) -> UserError:
    """The error for a path given as a file that is not one: missing, a folder, or a FIFO, socket or device
    (named, never opened: reading a FIFO waits for a writer that may never come)."""
    from pathlib import Path
    from charlm.text.encoded import kind_of   # on this error's path alone: it loads the corpus modules
    path = Path(given)
    if not path.exists():
        return UserError(f"no such file: {given}")
    return UserError(f"{given} is {'a folder' if path.is_dir() else kind_of(path)}, not a file; give a text file")
