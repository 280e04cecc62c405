import numpy as np


def run(demo):
    np.ones(1 << 40)
