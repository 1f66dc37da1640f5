"""One commit protocol for writers in many processes (Ray Data, Dask).

Each write task (a Ray write task, a Dask partition) runs bulkframe's own pipeline
(normalize → rules → bulk ingest) into its own regular staging table, named by the run
and the task (:mod:`bulkframe.distributed.task`); the driver then applies every stage to
the target in one transaction and drops the stages (:mod:`bulkframe.distributed.commit`).
The engines' adapters are :mod:`bulkframe.ray` and :mod:`bulkframe.dask`; this package
imports neither engine.
"""
