"""``tickerlake tokens``: the access tokens of ``tickerlake serve`` (create, list, revoke).

The tokens live in the lake (``catalog/access_tokens.json``, hashes only), so every
server on a shared lake accepts the same ones. A secret is printed once, at creation.
"""

from __future__ import annotations

import typer

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    render,
    render_rows,
    settings_of,
    user_errors,
)

__all__ = ["tokens_app"]

tokens_app = typer.Typer(
    help="Access tokens for `serve`: read (dashboard, GET API, SQL) or write (also write routes).",
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A unique name: who or what uses the token."),
    role: str = typer.Option("read", "--role", help="read or write."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a token and print its secret (shown only this once)."""
    from tickerlake.web.auth import TokenStore

    with user_errors():
        record, secret = TokenStore(settings_of(ctx)).create(name, role)

    def text() -> None:
        # The secret alone on stdout, so that `tickerlake tokens create x > file` keeps only it.
        err_console.print(
            f"created {record.role} token [bold]{record.name}[/]; its secret is shown once, store it now:",
            highlight=False,
            soft_wrap=True,
        )
        console.print(secret, highlight=False, soft_wrap=True)
        err_console.print(
            "use it as `Authorization: Bearer <token>`, or sign in at /login in a browser",
            style="dim",
            highlight=False,
            soft_wrap=True,
        )

    render({**record.public(), "token": secret}, as_json, text)


@tokens_app.command("list")
def list_tokens(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List the lake's tokens (names, roles, dates; never the secrets)."""
    from tickerlake.web.auth import TokenStore

    with user_errors():
        records = TokenStore(settings_of(ctx)).load()
    rows = [records[name].public() for name in sorted(records)]

    def text() -> None:
        if not rows:
            console.print("no tokens: `serve` is open to local clients only", highlight=False)
            return
        render_rows(
            "access tokens",
            ["name", "role", "secret starts", "created", "revoked"],
            [(r["name"], r["role"], r["hint"] + "…", r["created_at"], r["revoked_at"] or "") for r in rows],
        )

    render(rows, as_json, text)


@tokens_app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The token's name."),
    as_json: bool = JsonOpt,
) -> None:
    """Revoke a token: servers refuse it from their next request on (object stores: within seconds)."""
    from tickerlake.web.auth import TokenStore

    with user_errors():
        record = TokenStore(settings_of(ctx)).revoke(name)
    render(
        record.public(),
        as_json,
        lambda: console.print(f"revoked {record.role} token {record.name}", highlight=False),
    )
