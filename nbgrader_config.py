"""nbgrader configuration of the seqlab course; the repository root is the course folder.

No student code runs under ``nbgrader autograde``: the graded cells take the isolated grader's
results (``python -m autograder nbgrader-prepare sequence_models`` grades the whole class in
parallel first). The steps live in ``autograder/nbgrader_preprocessors.py``; the workflow and
its traps in ``docs/nbgrader.md``.
"""
import os
import sys

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
ROOT = os.path.dirname(os.path.abspath(__file__))
# this course folder's autograder package, not another one (an editable install of another
# clone): a hub's nbgrader runs in the students' environment, where the grader is not installed
sys.path.insert(0, ROOT)
try:
    from autograder import course
    from autograder import nbgrader_preprocessors as steps
    if os.path.realpath(os.path.dirname(os.path.dirname(course.__file__))) != \
            os.path.realpath(ROOT):
        raise ImportError(f"autograder comes from {course.__file__}, not from this course")
except Exception as exc:   # nbgrader would ignore a config that raises, and run student kernels
    sys.exit(f"nbgrader_config.py: cannot load the course's autograder package ({exc!r})")
finally:
    sys.path.remove(ROOT)

c.CourseDirectory.root = ROOT   # the formgrader on a hub lists no assignment without it
c.CourseDirectory.course_id = "seqlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# never copied from a submission: what is never packed (the data cache ...), nbgrader's feedback
# and a folder named autograder
c.CourseDirectory.ignore = [*course.PACK_IGNORE, "feedback", "autograder"]

c.GenerateAssignment.post_convert_hook = steps.stub_release   # the .py solution regions
c.Autograde.exclude_overwriting = {"sequence_models": steps.STUDENT_PATHS}
c.Autograde.sanitize_preprocessors = steps.sanitize_preprocessors()
c.Autograde.autograde_preprocessors = steps.autograde_preprocessors()
c.ExchangeFactory.collect = steps.CollectTime   # submission time: when collect saw it
