# Test harness for verify.py (the snippet in docs/webhooks.md): exit 0 when the body on stdin
# verifies under argv[1] with the header argv[2], 1 when it does not.
import sys

from verify import verify_signature

sys.exit(0 if verify_signature(sys.argv[1], sys.argv[2], sys.stdin.buffer.read()) else 1)
