from pathlib import Path


def run(demo):
    target = Path(__file__).resolve().parents[1] / 'pwned.txt'
    with open(target, 'w') as f:
        f.write('pwned')
