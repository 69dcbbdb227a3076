"""The service's routes, one module per concern; each exposes `router(context)`.

The routes only parse (`service/params.py`), call one function and shape its answer; the work is
in the service's modules and the rooms below them.
"""
