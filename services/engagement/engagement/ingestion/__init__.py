"""Ingestion: platforms' own payloads turned into interactions, understood and announced."""
