"""The benchmark suite: `python -m bench` (see bench/README.md).

Every figure is set beside a raw-driver baseline measured in the same run, because the machine
is shared and noisy: a ratio survives a busy neighbour, an absolute rate does not."""
