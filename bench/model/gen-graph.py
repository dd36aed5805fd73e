#!/usr/bin/python3
"""Writes a power-law dependency graph as an edge list (from,to): node n0 is
the service; every new node is needed by 1 to 3 older nodes chosen by
preferential attachment (a node that already needs many is likelier to need
more), so the out-degrees follow a power law and everything is reachable
from the service. Usage: gen-graph.py NODES SEED > edges.csv"""
import random
import sys


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    targets = [0]  # one entry per (out-degree + 1) of each node
    out = sys.stdout
    out.write("from,to\n")
    for i in range(1, n):
        parents = {rng.choice(targets) for _ in range(rng.choice((1, 1, 2, 3)))}
        for p in sorted(parents):
            out.write(f"n{p},n{i}\n")
            targets.append(p)
        targets.append(i)


if __name__ == "__main__":
    main()
