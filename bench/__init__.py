"""Speed and memory measurements (``python -m bench.<name>``), each against a floor measured in the same run."""
