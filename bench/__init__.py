"""Carnet's benchmark harness (issue 9, docs/performance.md): never part of the tests.

Run as ``python -m bench ...``. Everything it starts listens on 127.0.0.1
only; every loop is bounded in count and in time, and a run stops by itself.

Modules:

- :mod:`bench.procstat`: CPU and RSS of a process from ``/proc``.
- :mod:`bench.servers`: Carnet (``carnet serve``) and the bare relay as child processes.
- :mod:`bench.population`: people, enrolment codes and enrolled devices over the real API.
- :mod:`bench.wire`: the load generator's device (login, frames, opaque ciphertext).
- :mod:`bench.loadgen`: worker processes that drive the devices of a scenario.
- :mod:`bench.scenarios`: the scenarios (direct, class, announcement, idle, reconnect, offline).
- :mod:`bench.baseline_relay`: a bare aiohttp relay, the network-path ceiling.
- :mod:`bench.dbinsert`: the database's raw journaled insert rate, the persisted-path ceiling.
- :mod:`bench.synapse`: Matrix Synapse on the ``direct`` scenario.
- :mod:`bench.report`: results as a Markdown table and a PNG plot.
"""
