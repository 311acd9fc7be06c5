"""The Qt shell: widgets and windows. Calls into ``app.core`` for all logic that is not UI."""
