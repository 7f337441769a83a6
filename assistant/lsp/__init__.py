"""`assistant lsp`: ghostwriter's continuations in any editor, through the Language Server Protocol.

One server over stdio serves every editor: inline completions (LSP 3.18) as
ghost text, plain completions for clients without them, a command for an
unconditional sample, and the shown/accepted events the editor plugins
report. Like the REPL it is a thin front end over the generation API and the
sample store. Nothing here is imported until the command runs, so the CLI
stays fast.
"""
