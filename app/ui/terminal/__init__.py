"""The terminal panel's widgets (issue 17): ``view.TerminalView`` (one tab: our painter over
pyte's screen model), ``keys`` (key presses as xterm bytes), ``palette`` (the theme's colours).
The window owner is ``app.ui.owners.terminal``."""
