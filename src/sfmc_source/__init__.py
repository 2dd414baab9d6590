"""sfmc-source: Salesforce Marketing Cloud data into your warehouse, incrementally."""

__version__ = "0.1.0"
