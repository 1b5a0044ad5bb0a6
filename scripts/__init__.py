"""The project's scripts (scripts/README.md); a package only so that the tests import
``scripts.tables``. Nothing here is shipped in the ampcore distribution."""
