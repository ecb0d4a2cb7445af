# SPDX-License-Identifier: Apache-2.0
"""Shared by the Python tests: skip (exit 77, with the reason) when an
optional module is absent, and a unittest runner with the right exit code."""
import importlib
import sys
import unittest

SKIP = 77


def need(*modules):
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            print("SKIP: %s is not importable (%s)" % (m, e))
            sys.exit(SKIP)


def run(module_name):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module_name])
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    sys.exit(0 if res.wasSuccessful() and res.testsRun > 0 else 1)
