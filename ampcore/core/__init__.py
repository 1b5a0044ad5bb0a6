"""Torch-free leaves every layer builds on: errors, the registries of precision modes and
workloads (and the plugins that add to them), the profiles, the supported library versions,
and safe file writing."""
