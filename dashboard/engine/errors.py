"""The one exception the engine raises for bad input."""


class InputError(ValueError):
    """A problem with what the user gave us. Its message is one sentence, shown as is."""
