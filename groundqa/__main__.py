import sys

from groundqa.cli import main

sys.exit(main())
