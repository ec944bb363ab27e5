"""The `constructs/` folder must never shadow the `constructs` library (aws/aws-cdk#19301)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_constructs_folder_is_not_a_regular_package():
    assert not (REPO_ROOT / "constructs" / "__init__.py").exists(), (
        "constructs/__init__.py shadows the constructs library and breaks `import aws_cdk`: delete it"
    )
    assert list((REPO_ROOT / "constructs").rglob("__init__.py")) == []


def test_no_tests_constructs_package_shadows_the_library():
    assert not (REPO_ROOT / "tests" / "constructs").exists()


def test_construct_base_class_still_comes_from_the_installed_library():
    import constructs
    from constructs import Construct
    from constructs.database import PostgresDatabase

    assert "site-packages" in Construct.__module__ or "site-packages" in str(Path(constructs.__file__ or ""))
    assert issubclass(PostgresDatabase, Construct)
    assert any(str(REPO_ROOT / "constructs") == str(Path(p)) for p in constructs.__path__)
