"""``abaw-expr serve``: a local web page that turns an uploaded video into an expression timeline."""

from abaw_expr.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
