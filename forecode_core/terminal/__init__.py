"""The terminal's pure core (issue 17): shell-integration marks, commands as records, the
context a failed command gives the model, next-command prediction. No Qt, no PTY here."""
