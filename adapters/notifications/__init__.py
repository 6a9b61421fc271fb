"""Live notifications: the feed written with each save, and its fan-out to connected clients."""
