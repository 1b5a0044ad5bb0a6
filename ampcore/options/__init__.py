"""The options shared by the faces (``ampcore run`` and the pytest suite): the table, every
option once with its parser, environment variable and checks; the typed ``Settings`` it
resolves to; and the run request, the ``RunSpec``s made of them once for both faces."""
