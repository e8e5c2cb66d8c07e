"""User-facing errors: one line that names the file and the problem."""


class ChrommError(Exception):
    """An error caused by the user's input or environment, reported as `error: <message>`.

    The message is complete on its own (it names the file and the problem); callers print it
    without a traceback.
    """
