"""`python -m ops` refuses a revision outside the shared grammar before any AWS call."""

from __future__ import annotations

from io import StringIO

import pytest

from ops.cli import main


def _no_clients(name: str) -> None:
    raise AssertionError(f"no AWS client may be built for a refused revision (asked for {name})")


@pytest.mark.parametrize(
    "argv",
    [
        ["migrate", "--env", "staging", "--revision=--help"],
        ["migrate", "--env", "staging", "--revision=-h"],
        ["rollback", "--env", "production", "--revision=--sql"],
        ["migrate", "--env", "staging", "--revision", "head;rm"],
        ["migrate", "--env", "staging", "--revision", "HEAD", "--dry-run"],
    ],
)
def test_option_like_or_malformed_revisions_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv, clients=_no_clients, out=StringIO())
    assert exit_.value.code == 2
    assert "is not allowed: head, heads, base" in capsys.readouterr().err


@pytest.mark.parametrize("revision", ["head", "-1", "+1", "ae1027a6acf", "shoppingcart@head"])
def test_grammar_revisions_are_accepted(revision: str) -> None:
    out = StringIO()
    assert main(["migrate", "--env", "staging", f"--revision={revision}", "--dry-run"], out=out) == 0
    assert f'"revision": "{revision}"' in out.getvalue()
