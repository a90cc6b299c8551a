"""One plan per rollout strategy: which steps a new revision walks before it is promoted.

Each module turns its section of spec.strategy into a `steps.Plan`, and nothing more: when
steps end, what a verdict means, how pods and traffic follow is the progression's business, the
same for every strategy. The strategies are independent of each other (an import contract
checks it): a shadow plan that hands over to canary steps is put together by the progression,
which appends the next strategy's plan to the shadow's.
"""
