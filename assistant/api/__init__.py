"""`assistant serve`: ghostwriter's models behind an OpenAI-compatible and a KoboldAI-compatible HTTP API on localhost.

Writers' tools (SillyTavern, Kobold Lite, story pads, Obsidian plugins, the
`openai` client) speak to a local server over HTTP; this is that server. Like
the editor server it is a thin front end over the generation API, the
serving core (assistant.serving: one worker, the loaded models, the sessions
that keep a prompt's state) and the sample store. `settings` reads what a
request asks for, `generations` runs and records it, `completions` and
`kobold` are the two APIs' routes, `guard` the checks every request passes,
`app` puts them together and `server` runs it. Nothing here is imported
until the command runs, so `assistant --help` stays fast.
"""
