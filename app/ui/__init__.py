"""The Qt shell: widgets and windows. Calls into ``forecode_core`` (and ``app.services``) for all
logic that is not UI."""
