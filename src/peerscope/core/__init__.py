"""The pure core: figures, formulas and records with no I/O, no asyncio and no globals.

Every function takes ``now`` instead of reading a clock, so what it computes is exact and
testable; everything with I/O lives in the layers above.
"""
