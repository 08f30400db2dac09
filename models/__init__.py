"""Predictive-maintenance models: features, training, registry, risk policy, batch scoring (pure Python).

No Kafka, database or web imports here: the scorer and the API import this package, never the reverse.
"""
