import os


def run(demo):
    os.abort()
