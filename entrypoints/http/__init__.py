"""The Litestar HTTP service."""
