"""nbgrader configuration for a student of the seqlab course on JupyterHub.

Install it as the student's ``~/.jupyter/nbgrader_config.py`` (or merge it into a system-wide
``/etc/jupyter/nbgrader_config.py``); set the exchange folder to the course's.
"""
c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "seqlab"
c.Exchange.root = "/srv/nbgrader/exchange"

# Validate runs the whole notebook, and nbgrader's default cell time limit (30 s) interrupts the
# training cells. The longest cells, measured with `python benchmarks/notebooks.py` on a 2-core
# machine at load average 10 (about four times slower than idle): notebook 04's dates training
# 197.5 s, its caption comparison 125.0 s, notebook 03's full training 88.0 s. 600 s leaves a
# factor of three over the longest on a busy hub.
c.Execute.timeout = 600
