"""The one mapping from errors to CLI exit codes, and one line per failure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import tickerlake.cli as cli_package
from tickerlake.cli._common import (
    EXIT_INTERNAL,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_TRANSIENT,
    EXIT_USER,
    exit_code_for,
    make_settings,
    run_main,
    user_errors,
)
from tickerlake.errors import (
    InputFileError,
    InternalError,
    NotFoundError,
    QueryError,
    QueryRefused,
    RefusedError,
    TickerlakeError,
    TransientError,
    UserError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UserError("x"), 2),
        (InputFileError("a.csv", "empty file"), 2),
        (QueryError("syntax error"), 2),
        (TickerlakeError("bare"), 2),
        (NotFoundError("no table"), 3),
        (RefusedError("no"), 4),
        (QueryRefused("refused: DROP"), 4),
        (TransientError("down"), 75),
        (InternalError("bug"), 1),
        (RuntimeError("bug"), 1),
        (KeyError("bug"), 1),
    ],
)
def test_exit_code_for(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_the_codes() -> None:
    assert (EXIT_INTERNAL, EXIT_USER, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_TRANSIENT) == (1, 2, 3, 4, 75)


def _app(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def go() -> None:
        with user_errors():
            raise error

    return app


@pytest.mark.parametrize(
    ("error", "code"),
    [(NotFoundError("no table 'x' [a, b]"), 3), (TransientError("Kafka at h:9 does not answer"), 75)],
)
def test_user_errors_prints_one_line_with_the_code(error: BaseException, code: int) -> None:
    result = CliRunner().invoke(_app(error), [])
    assert result.exit_code == code
    assert result.stderr.strip().splitlines() == [f"error: {error}"]  # brackets printed, not Rich markup


def test_internal_error_in_user_errors_says_it_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKERLAKE_DEBUG", raising=False)
    result = CliRunner().invoke(_app(InternalError("broken invariant")), [])
    assert result.exit_code == 1
    assert "internal error: InternalError: broken invariant" in result.stderr
    monkeypatch.setenv("TICKERLAKE_DEBUG", "1")
    assert isinstance(CliRunner().invoke(_app(InternalError("x")), []).exception, InternalError)


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (TransientError("store down"), 75, "error: store down"),
        (
            ValueError("bad\nsecond"),
            1,
            "error: internal error: ValueError: bad (set TICKERLAKE_DEBUG=1 for the traceback)",
        ),
    ],
)
def test_run_main_maps_escaped_errors(
    error: BaseException,
    code: int,
    line: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TICKERLAKE_DEBUG", raising=False)

    def app() -> None:
        raise error

    with pytest.raises(SystemExit) as info:
        run_main(app)
    assert info.value.code == code
    assert capsys.readouterr().err.splitlines() == [line]
    monkeypatch.setenv("TICKERLAKE_DEBUG", "1")
    with pytest.raises(type(error)):
        run_main(app)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"lake": "ftp://host/x"},
            "--lake: unsupported lake scheme 'ftp' in 'ftp://host/x': use a path, file:// or s3://",
        ),
        ({"lake": "s3://"}, "--lake: 's3://' names no bucket: use s3://BUCKET[/PREFIX]"),
        ({"port": "http"}, "TICKERLAKE_PORT: "),
    ],
)
def test_invalid_settings_are_one_line_user_errors(values: dict[str, str], message: str) -> None:
    with pytest.raises(UserError) as info:
        make_settings(**values)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "lake", ["./lake", "/abs/lake", "file:///abs/lake", "s3://bucket", "s3a://bucket/prefix"]
)
def test_supported_lakes(lake: str) -> None:
    assert make_settings(lake=lake).lake == lake


def test_no_subcommand_imports_the_cli_package() -> None:
    # Sub-commands take ``app`` from cli._app; only cli/__init__ imports them: no cycle.
    folder = Path(cli_package.__file__).parent
    for path in folder.glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "tickerlake.cli" not in modules, path.name
