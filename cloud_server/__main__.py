"""``python -m cloud_server``: the same as the ``forecode-cloud`` command."""

import sys

from cloud_server.main import main

sys.exit(main())
