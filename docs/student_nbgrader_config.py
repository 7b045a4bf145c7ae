"""nbgrader configuration for a student of the seqlab course on JupyterHub.

Install it as the student's ``~/.jupyter/nbgrader_config.py`` (or merge it into a system-wide
``/etc/jupyter/nbgrader_config.py``); set the exchange folder to the course's.
"""
c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "seqlab"
c.Exchange.root = "/srv/nbgrader/exchange"

# Validate runs the whole notebook. nbgrader's default cell time limit (30 s) interrupts the
# training cells: notebook 04 takes 115 s end to end on an idle 2-core machine (README), so no
# cell takes longer there; 600 s leaves room for a hub shared by many students.
c.Execute.timeout = 600
