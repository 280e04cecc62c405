def run(demo):
    demo.metric('one', 1)
