def run(demo):
    demo.claim('two is less than one', 2 < 1, a=2, b=1)
