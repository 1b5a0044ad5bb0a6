"""The package as released: every third-party library ampcore imports is declared in pyproject
(dependencies or an extra), and the wheel ships ampcore's modules, py.typed and the entry points,
nothing else from the source tree (examples/, tests/, scripts/, docs/)."""

import ast
import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ampcore"

# Import name -> distribution name, where they differ (beyond case and "_" / "-").
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "pynvml": "nvidia-ml-py",
    "cv2": "opencv-python",
    "google": "protobuf",
    "huggingface_hub": "huggingface-hub",
}


def imported_top_level_names(package: Path) -> dict[str, list[str]]:
    """Every absolute import's top-level name in the package's modules, with where it occurs:
    module level, inside functions (lazy imports) and under ``if TYPE_CHECKING`` alike."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                found.setdefault(top, []).append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return found


def third_party(names: dict[str, list[str]], own: str) -> dict[str, list[str]]:
    return {name: where for name, where in names.items()
            if name != own and name not in sys.stdlib_module_names}


def declared_distributions(pyproject: Path) -> set[str]:
    """Canonical names of the dependencies and of every extra's requirements."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return {canonicalize_name(Requirement(line).name) for line in lines}


def undeclared_imports(package: Path, pyproject: Path) -> dict[str, list[str]]:
    """Third-party imports whose distribution pyproject does not declare, with where they occur."""
    declared = declared_distributions(pyproject)
    imports = third_party(imported_top_level_names(package), own=package.name)
    return {name: where for name, where in imports.items()
            if canonicalize_name(DISTRIBUTIONS.get(name, name)) not in declared}


def test_every_imported_library_is_declared():
    assert undeclared_imports(PACKAGE, ROOT / "pyproject.toml") == {}


def test_the_scan_sees_lazy_imports_and_reports_undeclared_ones(tmp_path):
    package = tmp_path / "mypkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("import os\nimport numpy as np\nfrom . import sub\n")
    (package / "sub" / "__init__.py").write_text(
        "from mypkg import other\n"
        "def load():\n    import yaml\n    from sklearn.datasets import load_digits\n"
        "    from not_declared_anywhere.sub import thing\n"
        "    return yaml, load_digits, thing\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "mypkg"\ndependencies = ["NumPy>=1.22"]\n'
                         '[project.optional-dependencies]\nextra = ["scikit_learn"]\n')
    missing = undeclared_imports(package, pyproject)
    assert set(missing) == {"yaml", "not_declared_anywhere"}
    assert missing["yaml"] == ["mypkg/sub/__init__.py:3"]
    # Declared under its distribution name, the lazy import passes.
    pyproject.write_text(pyproject.read_text().replace('"scikit_learn"', '"scikit_learn", "PyYAML"'))
    assert set(undeclared_imports(package, pyproject)) == {"not_declared_anywhere"}


def source_tree_copy(destination: Path) -> Path:
    """The source tree without its version control, caches, build outputs and docs (the build
    must not read or leave anything in the working tree); examples/ and tests/ stay, to show they
    are left out of the wheel."""
    ignore = shutil.ignore_patterns(".git", ".tox", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".benchmarks", "docs", "runs")
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


@pytest.mark.slow
def test_the_wheel_ships_the_package_typed_with_its_entry_points(tmp_path):
    pytest.importorskip("build")
    source = source_tree_copy(tmp_path / "src")
    out = tmp_path / "dist"
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("ampcore-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_text = archive.read(entry_points).decode()
    assert "ampcore/py.typed" in names
    assert "ampcore/suite/plugin.py" in names and "ampcore/cli.py" in names
    outside = [n for n in names if not n.startswith(("ampcore/", "ampcore-"))]
    assert outside == []  # no examples/, tests/, benchmarks/, scripts/ or conftest.py
    assert not any(n.startswith(("examples/", "tests/")) or "/tests/" in n for n in names)
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str
    parser.read_string(entry_text)
    assert parser["console_scripts"]["ampcore"].strip() == "ampcore.cli:main"
    assert parser["pytest11"]["ampcore"].strip() == "ampcore.suite.plugin"
