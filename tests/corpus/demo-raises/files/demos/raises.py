def run(demo):
    raise ValueError('boom')
