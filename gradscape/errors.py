"""The one exception type that the command line turns into a one-line message and exit code 2."""


class UserError(Exception):
    """A mistake the user can fix (bad flag, missing data, malformed file); the message says how."""
