"""Training one run: the run request (``RunSpec``), precision modes at run time, injected
regressions, the step strategies and the loop, and the ``RunResult`` they produce."""
