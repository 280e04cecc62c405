def run(demo):
    demo.metric('x', 1)
