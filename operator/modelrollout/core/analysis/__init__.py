"""Statistical judgement of the new version against the old: numbers in, verdicts out."""
