"""The window's owners: each holds one part of the editor's state, its Qt signals and its
commands (``commands()``); ``app.ui.main_window.MainWindow`` builds them, lays out their
widgets, binds every command's keys in one place (``commands.bind_commands``) and wires the
owners' signals to each other. An owner never reaches into another owner's private fields or
into the window: it gets what it needs as constructor arguments (another owner's public API,
a widget, a callable) and says what happened through its signals.

- ``workspace.Workspace``: the folder, its ignore rules and file list; resolving a path hint
- ``documents.Documents``: the tabs, open/save/close, changes on disk, hot exit's session
- ``preferences.Preferences``: the settings file, the theme toggle and zoom
- ``editing.Editing``: the current editor's commands (find bar, go to line, comments, ...)
- ``chat.Chat``: the chat panel beside the editor and its context host
- ``engine.EngineController``: the local completion engine's life cycle and status, the
  completion context (policy: ``forecode_core.completion.open_buffers``)
- ``cloud.CloudController``: the service connection, its token and status
- ``index.IndexController``: the codebase index of the open folder
- ``review.ReviewController``: apply reviews and inline edit (Ctrl+K)
- ``next_edit.NextEditController``: next-edit suggestions (Tab predicts the next change):
  edit capture, propagation and the model's suggestions, the session per buffer, the view
- ``language.LanguageController``: language servers: squiggles, hover on them, the Problems
  panel and the status bar's counts (the servers on their own thread: ``app.services.lsp``)
- ``bug_finder.BugFinder``: the bug finder's tier 2: the local model reviews changed functions
  when the editor is idle; likely bugs underlined (indicator 23), fixed in the shadow, dismissed
- ``terminal_ai.TerminalAI``: Explain / Fix for a failed terminal command (the bar over the
  terminal, the chat, the Edit files flow) and the next-command ghost text in the prompt line

A new owner (next-edit, language servers, a terminal, an agent) is one more module here: a
``QObject`` with its signals and ``commands()``, built in ``MainWindow.__init__`` and listed
in ``MainWindow.owners``; its keys and palette rows follow from that list.
"""

from .commands import Command, CommandOwner, bind_commands

__all__ = ["Command", "CommandOwner", "bind_commands"]
