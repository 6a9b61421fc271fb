"""The HTTP routes: each handler decodes, calls a use case and encodes, nothing more."""
