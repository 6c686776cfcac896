"""The one exception type for problems the user must fix (exit status 2)."""


class GradcheckError(ValueError):
    """The check could not run because of something the user can change.

    The message is written for the user: what went wrong and where, what was expected, and what to
    do. The CLI prints it as one paragraph and exits 2; any other exception is a bug in gradcheck.
    It subclasses ValueError so that code catching the built-in error for a bad argument (as it would
    from any library) catches gradcheck's too.
    """
