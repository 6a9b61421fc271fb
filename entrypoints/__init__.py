"""Entrypoints: the HTTP service and the command line; the composition root."""
