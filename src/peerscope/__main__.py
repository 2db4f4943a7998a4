"""``python -m peerscope``: the command line."""

import sys

from peerscope.cli import main

sys.exit(main())
