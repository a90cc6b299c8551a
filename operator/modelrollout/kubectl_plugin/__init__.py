"""`kubectl modelrollout`: the command-line companion."""
