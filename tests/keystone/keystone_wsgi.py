"""Gunicorn entry point for the real Keystone WSGI app (keystone.wsgi.api:application).

Keystone parses its options with oslo.config, which reads sys.argv: under
gunicorn that holds gunicorn's own flags, which oslo.config rejects ("unrecognized
arguments") and the worker exits with code 2. Gunicorn has parsed its flags by
the time it imports this module, so drop them before Keystone loads.
Config comes from OS_KEYSTONE_CONFIG_DIR / OS_KEYSTONE_CONFIG_FILES.
"""
import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
