"""ingest: a multi-tenant data-ingestion control plane."""

__version__ = "0.1.0"
