import time


def run(demo):
    time.sleep(60)
