"""The data layer's error: data the studio cannot train on, with a message that says how to fix it."""
from studio.errors import UserError


class DataError(UserError):
    """Data the studio cannot train on; the message says what is wrong and how to fix it."""
