import ctypes


def run(demo):
    ctypes.string_at(0)
