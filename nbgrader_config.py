"""nbgrader configuration for the seqlab course (the repository root is the course folder).

Instructor workflow (see README.md):
    nbgrader generate_assignment sequence_models --force   # or: python -m autograder release
    # copy submissions to submitted/<student>/sequence_models/
    nbgrader autograde sequence_models --force
    nbgrader generate_feedback sequence_models --force
    nbgrader export
"""
import os

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "seqlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_assignments = [dict(name="sequence_models")]

# The student modules are .py files beside the notebooks. By default nbgrader copies the
# instructor's (source) version of every non-notebook file over the student's before grading,
# which would grade the reference code. Keep the students' own modules.
c.Autograde.exclude_overwriting = {
    "sequence_models": [
        "seqlab/rnn_layers.py",
        "seqlab/lstm_layers.py",
        "seqlab/attention_layers.py",
        "seqlab/captioning.py",
        "seqlab/transformer.py",
    ]
}

# Training cells run a short version under grading (seqlab.data.GRADING reads this variable).
os.environ["SEQLAB_GRADING"] = "1"
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
