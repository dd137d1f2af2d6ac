"""`python -m seed`: the demo data set, bulk import from files, and admin accounts."""

import sys

from seed.cli import main

if __name__ == "__main__":
    sys.exit(main())
