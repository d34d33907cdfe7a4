"""``aws-masker monitor``: the terminal view of masking (sample.py, procs.py, render.py, cli.py)."""
