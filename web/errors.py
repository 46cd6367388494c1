"""The web package's one base error."""


class WebError(Exception):
    """The web app cannot be built or started as asked; the message says what to fix."""
