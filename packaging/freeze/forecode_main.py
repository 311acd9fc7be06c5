"""The frozen app's one executable: a child process when a switch names one
(``forecode --worker ...``; see ``forecode_core.entrypoints``), else the editor."""

import sys

from forecode_core.entrypoints import dispatch

if __name__ == "__main__":
    if not dispatch(sys.argv):
        from app.main import main

        sys.exit(main())
