import sys

from rankops.cli import main

sys.exit(main())
