from ampcore.suite.matrix.amp import *  # noqa: F401,F403  (the suite: ampcore/suite/matrix)
