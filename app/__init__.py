"""StemLab's user-facing layer: the desktop remix app and the `stemlab` command line."""
