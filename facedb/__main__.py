import sys

from facedb.cli import main

sys.exit(main())
