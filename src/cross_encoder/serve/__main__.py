import sys

from cross_encoder.serve.cli import main

sys.exit(main())
