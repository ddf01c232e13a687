"""Reading the user's data: archives, class folders, tables, images, and labelled examples with a report."""
from studio.engine.data.errors import DataError

__all__ = ["DataError"]
