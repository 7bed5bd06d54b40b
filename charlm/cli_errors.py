"""The command line's own errors: a message for the person at the keyboard, said in one line, exit status 2."""


class UserError(Exception):
    """Bad input from the person at the keyboard: one line on stderr, exit status 2."""


class OwnError(UserError):
    """A problem of one process of a torchrun run alone (its GPU's memory): every process says its own.
    Other errors are the same in every process (the same command, files and settings): rank 0 alone says them."""
