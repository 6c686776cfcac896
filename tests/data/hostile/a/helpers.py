"""The helper of folder a: same module name as the other folder's, different content."""

FOLDER = "a"
WIDTH = 3
