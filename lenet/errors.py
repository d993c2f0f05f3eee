"""The project's user-facing error for data that cannot be used (one clear, specific sentence)."""


class DataError(ValueError):
    """One clear, specific, user-facing sentence about data that cannot be used."""
