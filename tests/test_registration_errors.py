"""Bad registrations a user writes (ampcore.api.Workload / Precision) and build paths that do
not import: each a clear error naming the entry and the field, never a traceback."""

from __future__ import annotations

import pytest

from ampcore.core import plugins, registry
from ampcore.core.entries import Precision, Workload
from ampcore.core.errors import RegistrationError

SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]


@pytest.fixture
def fresh_registries(monkeypatch):
    """The registries as they stand, restored after the test; no plugins to discover."""
    for table in (registry.WORKLOADS, registry.PRECISIONS):
        monkeypatch.setattr(table, "_items", dict(table._items))
        monkeypatch.setattr(table, "_sources", dict(table._sources))
    monkeypatch.setattr(plugins, "_discovery", plugins._Discovery())


def config():
    return registry.workload_entry("resnet18").config("smoke")


@pytest.mark.parametrize("path", [":build", ".relative:build", "module:", "no_colon"])
def test_a_malformed_build_path_is_refused_when_made(path):
    with pytest.raises(RegistrationError, match=r"workload 'toy': build is .*module:function"):
        Workload("toy", "toy", path, {"smoke": config()})


@pytest.mark.parametrize(("field", "value"), [
    ("default", "no"), ("ddp", "yes"), ("asserts_speedup", 1), ("run_options", (["model"],)),
])
def test_a_workload_field_of_the_wrong_type_is_a_registration_error(field, value):
    with pytest.raises(RegistrationError, match=rf"workload 'toy': {field} is "):
        Workload("toy", "toy", "toy_module:build", {"smoke": config()}, **{field: value})


@pytest.mark.parametrize(("fields", "message"), [
    ({"id": "my,prec"}, "precision mode id 'my,prec'"),
    ({"autocast": "float17"}, "precision mode 'p': autocast is 'float17'"),
    ({"grad_scaler": "yes"}, "precision mode 'p': grad_scaler is 'yes'"),
    ({"implementation": ":Active"}, "precision mode 'p': implementation is ':Active'"),
    ({"libraries": "torchao"}, "precision mode 'p': libraries is 'torchao'"),
    ({"options": (("recipe",),)}, "precision mode 'p': options is"),
])
def test_a_precision_is_checked_when_made(fields, message):
    arguments = {"id": "p", "description": "d", "method_name": "P", **fields}
    with pytest.raises(RegistrationError, match=message.replace("(", r"\(")):
        Precision(**arguments)


def test_the_built_in_precisions_pass_the_check():
    for precision in registry.PRECISIONS.values():
        Precision(**{f: getattr(precision, f) for f in precision.__dataclass_fields__})


@pytest.mark.usefixtures("fresh_registries", "isolated_env")
def test_a_build_module_whose_import_raises_is_a_usage_error(tmp_path, monkeypatch, capsys):
    from ampcore.cli import main

    (tmp_path / "review_broken_build.py").write_text('raise RuntimeError("boom at import")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.register_workload(Workload("broken", "its module raises",
                                        "review_broken_build:build", {"smoke": config()}))
    code = main(["run", "--workload", "broken", "--precision", "fp32", *SMOKE])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert ("workload 'broken': its build 'review_broken_build:build' cannot be imported "
            "(RuntimeError: boom at import)") in err
