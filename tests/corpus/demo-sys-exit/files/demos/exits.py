import sys


def run(demo):
    sys.exit(3)
