"""The service's own logs over a period, read where the target keeps them: the local stack's process log files, or
the pods' logs through the Kubernetes API. One interface (base.py), one module per backend."""
