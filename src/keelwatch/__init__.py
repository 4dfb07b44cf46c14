"""keelwatch: what is vulnerable in production, right now, and who must fix it by when."""

__version__ = "0.1.0"
