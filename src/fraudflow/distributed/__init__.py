"""Spark drivers for simulation, features and training (extra: ``pip install 'fraudflow[spark]'``).

Nothing here is imported unless ``--engine spark`` is asked for. Spark tasks run the same code as
the local engines (the compiled simulator kernel, the generated feature SQL, XGBoost) and write
the same lake with the same writer, so a Spark run's files equal a local run's.
"""
