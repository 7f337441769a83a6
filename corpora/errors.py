"""The one exception for mistakes a user can fix.

It lives in the most upstream package so that corpora, finetune and assistant
can all raise it without importing each other backwards. The CLI turns it into
a one-line message and exit status 2; everything else is a bug and may show a
traceback.
"""


class UserError(Exception):
    """Bad input from the user: a one-line message that says what to do."""
