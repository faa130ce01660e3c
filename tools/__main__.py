"""``python -m tools ...``: the same entry point as the ``mqsentry`` console script.

Linux/gVisor counterpart: none (packaging glue; runsc's main.go plays this role in gVisor).
"""

import sys

from tools.cli import main

sys.exit(main())
