"""The closed set of verdicts an analysis can reach, for one metric or for a whole step.

"Worst wins" when verdicts are combined: FAIL > ERROR > INCONCLUSIVE > PASS, so that a failed
query on one metric never hides a regression measured on another; only FAIL is evidence of a
regression. An ERROR (the
metric could not be read) or an INCONCLUSIVE (too little evidence) never promotes and never
rolls back by itself; limits on how long either may last live in the analysis settings.
"""

from __future__ import annotations

import enum


class Verdict(str, enum.Enum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
