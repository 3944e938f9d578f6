"""The `envassay` subcommands, one module a command group: each adds its subparsers
(``add_*``) and holds their handlers (``cmd_*``). The CLI's entry point, and the one
place errors become exit codes, is :mod:`envassay.cli`.

These modules import only the standard library and :mod:`envassay.errors` at the top;
a handler imports what it needs when it runs, so ``envassay --help`` stays quick."""
