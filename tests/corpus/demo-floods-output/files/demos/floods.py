def run(demo):
    for _ in range(200_000):
        print('spam ' * 20)
    demo.metric('lines', 200_000)
