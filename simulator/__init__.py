"""Wind-fleet SCADA simulator: physics, degradation to failure, sensor faults, ground truth.

Pure Python + numpy/pandas/pyarrow: no Kafka, database or web imports, so producers, model training
and tests can all use it. Entry points: :class:`simulator.fleet.Fleet`,
:func:`simulator.scenarios.load_scenario` and ``python -m simulator``.
"""
