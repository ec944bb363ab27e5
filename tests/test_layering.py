"""The layering rule of docs/decisions/0004-layering.md, enforced over the import graph of the source tree.

Every `import` and `from ... import` of every Python file outside tests/ is read with `ast` (also
imports inside functions and `if TYPE_CHECKING:` blocks) and checked against `RULES`: which project
packages each package may import and which third-party libraries it may use. A new top-level
package fails the test until it has a place in the rule.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTE = "docs/decisions/0004-layering.md"

# The CDK and its jsii runtime. `constructs` here is the installed library (`from constructs import
# Construct`); our constructs/ folder extends its package path and is the project package "constructs".
CDK = frozenset({"aws_cdk", "jsii", "cdk_nag", "constructs"})
ANY = None  # any third-party library


@dataclass(frozen=True)
class Rule:
    may_import: frozenset[str]  # project packages besides itself ("tests.support" names a subpackage)
    third_party: frozenset[str] | None  # allowed third-party libraries; ANY for all
    no_cdk: bool = False  # with third_party ANY: except the CDK
    forbidden: frozenset[str] = frozenset()  # project modules excluded although their package is allowed
    why: str = ""


RUNTIME = Rule(
    may_import=frozenset({"contract"}),
    third_party=ANY,
    no_cdk=True,
    why="runtime code (bundled into the Lambda asset, the migration image or an application) "
    "imports only itself, the shared contract and its own third-party dependencies",
)

RULES: dict[str, Rule] = {
    "app": Rule(
        may_import=frozenset({"config", "contract", "stacks"}),
        third_party=CDK,
        why="app.py loads the configuration and hands it to the app definition in stacks/",
    ),
    "stacks": Rule(
        may_import=frozenset({"constructs", "config", "contract", "assets"}),
        third_party=CDK,
        forbidden=frozenset({"config.environments"}),
        why="stacks compose constructs and receive their configuration (never the environment instances)",
    ),
    "constructs": Rule(
        may_import=frozenset({"config", "contract"}),
        third_party=CDK,
        forbidden=frozenset({"config.environments"}),
        why="constructs import aws_cdk, jsii, cdk_nag, the constructs library, sibling constructs, "
        "the config types they are given and the contract; assets come in as arguments from the stacks; "
        "never stacks, tools, ops or runtime code",
    ),
    "assets": Rule(
        may_import=frozenset({"config", "contract"}),
        third_party=ANY,
        why="asset staging (Lambda bundles, image context, CA bundle) is used by the stacks and tools, "
        "and uses no stacks, constructs or tools",
    ),
    "config": Rule(
        may_import=frozenset(),
        third_party=ANY,
        no_cdk=True,
        why="config/ is plain Python: no aws_cdk and nothing of the project but itself",
    ),
    "contract": Rule(
        may_import=frozenset(),
        third_party=frozenset(),
        why="contract/ is bundled into the Lambdas and the migration image: standard library only",
    ),
    "lambdas": RUNTIME,
    "migration": RUNTIME,
    "dbclient": RUNTIME,
    "rehearsal": RUNTIME,
    "ops": Rule(
        may_import=frozenset({"config", "contract"}),
        third_party=ANY,
        no_cdk=True,
        why="the operator CLI uses the configuration and the contract, not the CDK code",
    ),
    "tools": Rule(
        # Explicit exceptions (see the decision note): the app definition (the stacks module app.py
        # imports; tools/bench.py synthesizes it), the runtime code the bench and the rehearsal run
        # locally (lambdas, migration, dbclient) and the test harness of tests/support (TLS PostgreSQL,
        # moto helpers) that tools/bench_rotation.py and tools/rehearse.py share with the tests.
        may_import=frozenset(
            {"config", "contract", "assets", "lambdas", "migration", "dbclient", "rehearsal", "tests.support"}
        ),
        third_party=ANY,
        why="build and review tooling uses config and contract; of stacks only the app definition",
    ),
}
UNCHECKED = frozenset({"tests"})  # tests may import anything they test
SKIPPED_FOLDERS = frozenset({"cdk.out", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class Import:
    path: Path  # relative to the root
    line: int
    module: str  # "constructs.database", or "constructs" for `from constructs import Construct`
    names: tuple[str, ...]  # what `from module import ...` takes; () for `import module`


def python_files(root: Path) -> Iterator[Path]:
    """Our source files: top-level modules and packages, without symlinked tooling, hidden folders or tests."""
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink() or entry.name in SKIPPED_FOLDERS:
            continue
        if entry.is_file() and entry.suffix == ".py":
            yield entry
        elif entry.is_dir():
            yield from (
                path
                for path in sorted(entry.rglob("*.py"))
                if not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts)
            )


def unit_of(path: Path) -> str:
    """The package a file belongs to: its top-level folder, or the module name of a top-level file."""
    return path.parts[0] if len(path.parts) > 1 else path.stem


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    relative = path.relative_to(root)
    package = list(relative.parts[:-1])  # the package a relative import starts from
    for node in ast.walk(ast.parse(path.read_text(), filename=str(relative))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield Import(relative, node.lineno, module, tuple(alias.name for alias in node.names))


def app_definition_modules(root: Path) -> frozenset[str]:
    """The stacks module(s) app.py imports: the one part of stacks/ tools may use."""
    app = root / "app.py"
    if not app.exists():
        return frozenset()
    return frozenset(i.module for i in imports_of(root, app) if i.module.split(".")[0] == "stacks")


def targets(imported: Import, our_constructs: frozenset[str]) -> Iterator[str]:
    """The modules an import reaches: the module, and `module.name` when a name is a submodule."""
    if imported.module == "constructs" and not set(imported.names) & our_constructs:
        yield "lib:constructs"  # the installed library
        return
    yield imported.module
    for name in imported.names:
        if imported.module == "constructs" and name in our_constructs:
            yield f"constructs.{name}"
        elif name != "*":
            yield f"{imported.module}.{name}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line} imports {self.module}: " if self.line else f"{self.path}: "
        return where + self.reason


def violations(root: Path) -> list[Violation]:
    files = list(python_files(root))
    units = {unit_of(path.relative_to(root)) for path in files}
    our_constructs = frozenset(p.stem for p in (root / "constructs").glob("*.py"))
    app_definition = app_definition_modules(root)
    problems = [
        Violation(
            f"{unit}/",
            0,
            "",
            f"a top-level package without a place in the layering rule: add it to RULES in "
            f"tests/test_layering.py and to {NOTE}",
        )
        for unit in sorted(units - RULES.keys() - UNCHECKED)
    ]
    for path in files:
        unit = unit_of(path.relative_to(root))
        rule = RULES.get(unit)
        if rule is None:
            continue
        for imported in imports_of(root, path):

            def problem(reason: str, imported: Import = imported) -> Violation:
                return Violation(str(imported.path), imported.line, imported.module, reason)

            reached = list(targets(imported, our_constructs))
            top = reached[0].split(".")[0]
            if reached[0] == "lib:constructs":
                top = "constructs"
                is_project = False
            else:
                is_project = top in units or top in RULES or top in UNCHECKED
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if not is_project:
                if rule.third_party is ANY:
                    if rule.no_cdk and top in CDK:
                        problems.append(problem(f"{unit} must not use the CDK ({rule.why})"))
                elif top not in rule.third_party:
                    allowed = ", ".join(sorted(rule.third_party)) or "no third-party library"
                    problems.append(problem(f"{unit} may use {allowed} ({rule.why})"))
                continue
            if top == unit:
                continue
            if unit == "tools" and any(within(m, d) for m in reached for d in app_definition):
                continue
            allowed_here = any(within(m, allowed) for m in reached for allowed in rule.may_import)
            forbidden = [m for m in reached for f in rule.forbidden if within(m, f)]
            if not allowed_here:
                allowed = ", ".join(sorted(rule.may_import)) or "nothing of the project"
                problems.append(problem(f"{unit} may import only {allowed} ({rule.why})"))
            elif forbidden:
                problems.append(problem(f"{unit} must not import {forbidden[0]} ({rule.why})"))
    return problems


def test_the_source_tree_follows_the_layering_rule() -> None:
    problems = violations(REPO_ROOT)
    if problems:
        pytest.fail(
            f"{len(problems)} import(s) break the layering rule of {NOTE}:\n  "
            + "\n  ".join(map(str, problems)),
            pytrace=False,
        )


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_rule_reports_each_offending_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "app.py": "from stacks.cdk_app import define_app\n",
            "stacks/cdk_app.py": "from constructs.database import Db\nimport tools.diff\n",
            "constructs/database.py": (
                "import aws_cdk\nfrom constructs import Construct\nfrom . import network\n"
                "from config.schema import DatabaseConfig\nfrom config import environments\n"
                "from tools.rds_ca_bundle import x\nimport requests\n"
            ),
            "constructs/network.py": "def f():\n    from stacks.cdk_app import define_app\n",
            "config/schema.py": "from aws_cdk import Duration\nimport json\n",
            "contract/names.py": "import yaml\n",
            "lambdas/handler.py": "import pg8000\nfrom contract.names import X\nfrom config.schema import Y\n",
            "tools/bench.py": "from stacks.cdk_app import define_app\nfrom stacks.data_stack import DataStack\n",
            "tools/rehearse.py": "from tests.support.postgres import find_binaries\nfrom tests.conftest import app_context\n",
            "newpackage/thing.py": "",
            "tests/test_x.py": "import tools.diff\nimport stacks.cdk_app\n",
        },
    )
    problems = violations(root)
    assert [(p.path, p.line, p.module) for p in problems] == [
        ("newpackage/", 0, ""),
        ("config/schema.py", 1, "aws_cdk"),
        ("constructs/database.py", 5, "config"),
        ("constructs/database.py", 6, "tools.rds_ca_bundle"),
        ("constructs/database.py", 7, "requests"),
        ("constructs/network.py", 2, "stacks.cdk_app"),
        ("contract/names.py", 1, "yaml"),
        ("lambdas/handler.py", 3, "config.schema"),
        ("stacks/cdk_app.py", 2, "tools.diff"),
        ("tools/bench.py", 2, "stacks.data_stack"),
        ("tools/rehearse.py", 2, "tests.conftest"),
    ]
    assert "config.environments" in str(problems[2])
    assert str(problems[3]).startswith(
        "constructs/database.py:6 imports tools.rds_ca_bundle: constructs may import only"
    )
