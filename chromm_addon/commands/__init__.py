"""One module per command of `python -m chromm_addon`; see cli.py."""
