"""``course release``: placeholder replaced below."""
def add_arguments(p): pass
def run(args): return 0
