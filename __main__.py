"""``python -m mqsentry ...``: the same entry point as the ``mqsentry`` console script.

Linux counterpart: none. gVisor counterpart: runsc's main.go.
"""

import sys

from mqsentry.tools.entry import main

sys.exit(main())
