from ampcore.suite.matrix import *  # noqa: F401,F403  (the whole AMP matrix, here)
