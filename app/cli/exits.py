"""Exit codes of the `visionserve` command, and the errors that end a subcommand without a traceback."""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
INTERRUPTED = 130

EXIT_CODES = f"""exit codes:
  {OK}    success
  {FAILED}    the server refused or failed a request, could not be reached, or a check or download failed
  {USAGE}    usage error: a bad flag or setting, a missing or unreadable file
  {INTERRUPTED}  interrupted (Ctrl-C)"""


class CommandError(Exception):
    """Ends a subcommand: its message goes to stderr, `exit_code` to the shell."""

    exit_code = FAILED


class UsageError(CommandError):
    """The command line or the configuration is wrong: nothing was attempted."""

    exit_code = USAGE
