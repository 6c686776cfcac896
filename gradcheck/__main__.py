"""`python -m gradcheck ...`: the same command as `gradcheck ...`, for environments without the script on PATH."""

from .cli.entry import run

run()
