"""Test scaffolding shared by the test modules (not shipped in the ampcore package)."""
