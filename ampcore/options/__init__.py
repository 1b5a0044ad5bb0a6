"""The option table shared by the faces (``ampcore run`` and the pytest suite): every option
once, with its parser, environment variable and checks."""
