"""The serving core the editor server (assistant.lsp) and the HTTP API (assistant.api) share.

`jobs`: the one worker thread every generation runs on, taking turns, each
stopped by an event (a cancelled or superseded request, a client gone, a
shutdown); `models`: the models a server has loaded, kept under a memory
bound, and the sessions that keep a prompt's state between requests. Both
front ends stay thin over it and over the generation API.
"""

DEFAULT_MEMORY = 4_000_000_000  # bytes of model weights a server keeps loaded (here, torch-free, for the command line)
