"""`python -m massive_pipeline.cli`: the same as the `massive-pipeline` console script."""

import sys

from massive_pipeline.cli import main

sys.exit(main())
