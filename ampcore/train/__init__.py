"""Training one run: its specification (``RunSpec``), precision modes at run time, injected
regressions, the step strategies and the loop, and the ``RunResult`` they produce."""
