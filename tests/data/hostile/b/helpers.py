"""The helper of folder b: same module name as the other folder's, different content."""

FOLDER = "b"
WIDTH = 4
