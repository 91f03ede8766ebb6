"""The command line's exit codes, one table for every command (README, "Exit codes")."""

DONE = 0            # done, or started (without --wait)
FAILED = 1          # the task failed or was cancelled; the node or cluster cannot be reached; a bad setting
USAGE = 2           # a mistake in the command line or its input (argparse's own code)
REFUSED = 3         # another task keeps it from starting, or the task's state forbids it
NO_SUCH_TASK = 4    # no task, schedule or token of that id or name
PARTIAL = 5         # the task completed, but some of its items failed
ALERTS_OPEN = 6     # alerts: at least one is open
OUTPUT_CLOSED = 141     # whoever read the output stopped (`| head`): 128 + SIGPIPE, as other tools end then
