def run(demo)
    pass
