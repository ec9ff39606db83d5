"""``python -m maestro_ml.training``: see ``maestro_ml.training.cli``."""

import sys

from maestro_ml.training.cli import main

sys.exit(main())
