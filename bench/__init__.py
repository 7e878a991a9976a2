"""Hearth's benchmarks: ``python -m bench.server`` (start-up, idle memory and ``/health``
throughput of ``hearth serve``) and ``python -m bench.tasks`` (latency, throughput and worker
memory of the task queue); ``make bench`` runs both. Each figure is printed beside a baseline
measured in the same run on the same machine; they report, they assert nothing."""
