# Run Autobahn|Testsuite's wstest from the private install in ./.venv
# (installed there by run.sh with `pip install --target`). Python 2.7.
import os
import site
import sys

site.addsitedir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '.venv'))

from autobahntestsuite import wstest  # noqa: E402

sys.argv[0] = 'wstest'
wstest.run()
