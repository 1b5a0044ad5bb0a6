from ampcore.suite.matrix.ddp import *  # noqa: F401,F403  (the suite: ampcore/suite/matrix)
