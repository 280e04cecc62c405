def run(demo):
    demo.claim('two is less than one', 2 < 1, a=demo.number(2, 'a'), b=demo.number(1, 'b'))
