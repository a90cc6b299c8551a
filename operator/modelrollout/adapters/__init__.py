"""One subpackage per outside system, each a small Protocol with its real implementations."""
