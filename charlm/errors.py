"""The one error a person is shown as a message: bad input or a refusal. Any other exception is a bug."""


class UserError(ValueError):
    """Something the person can act on (a file, a setting, a text), said in one line. The CLI prints it and exits
    with status 2; a page shows it as a message. A ValueError, so code that caught those before still does."""
